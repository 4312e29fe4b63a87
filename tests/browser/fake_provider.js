// An EIP-1193 provider per test wallet, announced through EIP-6963 (and/or as window.ethereum).
// Every request goes to the test's Python wallet through the `kdemoWallet` binding; errors come
// back as {error: {code, message}} and are thrown as EIP-1193 provider errors.
(() => {
  const config = __KDEMO_WALLETS__;
  const announced = [];
  for (const wallet of config.wallets) {
    const listeners = new Map();
    const provider = {
      async request(args) {
        const { method, params } = args || {};
        const answer = await window.kdemoWallet(wallet.id, method, params === undefined ? [] : params);
        for (const [event, value] of answer.events || []) {
          setTimeout(() => (listeners.get(event) || []).forEach((fn) => fn(value)), 0);
        }
        if (answer.error) {
          const error = new Error(answer.error.message);
          error.code = answer.error.code;
          throw error;
        }
        return answer.result;
      },
      on(event, fn) {
        listeners.set(event, [...(listeners.get(event) || []), fn]);
        return provider;
      },
      removeListener(event, fn) {
        listeners.set(event, (listeners.get(event) || []).filter((f) => f !== fn));
        return provider;
      },
    };
    if (wallet.legacy) window.ethereum = provider;
    if (wallet.eip6963) {
      const info = { uuid: wallet.uuid, name: wallet.name, icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E", rdns: wallet.rdns };
      announced.push(Object.freeze({ info: Object.freeze(info), provider }));
    }
  }
  const announce = () => {
    for (const detail of announced) {
      window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail }));
    }
  };
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
  // the page reports each state change; the test keeps them, even across navigation
  document.addEventListener("kdemo:state", (event) => {
    window.kdemoTrace(event.detail.page, event.detail.state, event.detail.title + " " + event.detail.text);
  });
})();
