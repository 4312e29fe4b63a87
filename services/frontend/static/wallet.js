// kdemo frontend: talk to the browser wallet (EIP-6963 discovery, EIP-1193 requests).
// Sign page: connect, pick the account, check the chain, eth_signTypedData_v4, post, go to the issue.
// Link page: connect, pick the account, show the SIWE message, personal_sign, post, show the
// code to comment and follow its status until identity links or refuses it.
// Every state the page can be in has a name (data-state on #state) and its own message; each
// change is also dispatched as a `kdemo:state` event for anything embedding the page.
"use strict";

(function () {
  const providers = new Map(); // EIP-6963 uuid -> {info, provider}
  const REDIRECT_DELAY_MS = 2500; // long enough to read what was signed
  const POLL_MS = 1500;
  const CHAIN_NAMES = { 1: "Ethereum mainnet", 11155111: "Sepolia", 17000: "Holesky", 8453: "Base", 10: "OP Mainnet", 42161: "Arbitrum One", 137: "Polygon" };
  let onProvidersChanged = () => {};

  window.addEventListener("eip6963:announceProvider", (event) => {
    const detail = event.detail;
    if (detail && detail.info && detail.info.uuid && detail.provider) {
      providers.set(detail.info.uuid, detail);
      refreshWalletChoice();
      onProvidersChanged();
    }
  });

  function $(id) { return document.getElementById(id); }

  function chainName(id) {
    return CHAIN_NAMES[id] ? `chain id ${id} (${CHAIN_NAMES[id]})` : `chain id ${id}`;
  }

  // ---- the state panel ----

  function setState(name, title, text, actions) {
    const box = $("state");
    box.dataset.state = name;
    box.classList.toggle("bad", ["no-wallet", "locked", "rejected", "wrong-chain", "switch-rejected",
      "chain-unknown", "expired", "network", "refused", "error", "already-signed"].includes(name));
    box.classList.toggle("ok", ["success", "linked", "ready"].includes(name));
    $("state-title").textContent = title;
    $("state-text").textContent = text || "";
    const row = $("state-actions");
    row.replaceChildren();
    for (const action of actions || []) row.append(action);
    document.dispatchEvent(new CustomEvent("kdemo:state", {
      detail: { page: document.body.dataset.page, state: name, title, text: text || "" },
    }));
  }

  function button(label, onClick) {
    const node = document.createElement("button");
    node.type = "button";
    node.textContent = label;
    node.addEventListener("click", onClick);
    return node;
  }

  function link(label, href) {
    const node = document.createElement("a");
    node.href = href;
    node.textContent = label;
    node.className = "button-link";
    return node;
  }

  function codeBlock(text) {
    const pre = document.createElement("pre");
    const code = document.createElement("code");
    code.textContent = text;
    pre.append(code);
    return pre;
  }

  // ---- wallets and accounts ----

  function refreshWalletChoice() {
    const select = $("wallet-select");
    if (!select) return;
    const current = select.value;
    select.replaceChildren();
    for (const [uuid, detail] of providers) {
      const option = document.createElement("option");
      option.value = uuid;
      option.textContent = detail.info.name || uuid;
      select.append(option);
    }
    if (providers.has(current)) select.value = current;
    $("wallet-choice").classList.toggle("hidden", providers.size < 2);
  }

  function chosenProvider() {
    if (providers.size > 0) {
      const select = $("wallet-select");
      const picked = select && providers.get(select.value);
      return (picked || providers.values().next().value).provider;
    }
    return window.ethereum || null; // wallets that predate EIP-6963
  }

  async function discover() {
    window.dispatchEvent(new Event("eip6963:requestProvider"));
    // wallets answer the request synchronously; give slower extensions a moment
    await new Promise((resolve) => setTimeout(resolve, 300));
    return chosenProvider();
  }

  function selectedAccount() {
    const select = $("account-select");
    return select && select.value ? select.value : null;
  }

  function showAccounts(accounts) {
    const select = $("account-select");
    select.replaceChildren();
    for (const address of accounts) {
      const option = document.createElement("option");
      option.value = address;
      option.textContent = address;
      select.append(option);
    }
    $("account-box").classList.remove("hidden");
  }

  // ---- errors ----

  class PageFailure extends Error {
    constructor(kind, message, extra) {
      super(message);
      this.kind = kind;
      Object.assign(this, extra || {});
    }
  }

  async function api(method, url, body) {
    const options = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch (error) {
      throw new PageFailure("network", "kdemo could not be reached (" + error.message + ").");
    }
    let answer = null;
    try { answer = await response.json(); } catch (_) { answer = null; }
    if (!response.ok) {
      const error = (answer && answer.error) || {};
      const text = [error.message || response.statusText, error.hint].filter(Boolean).join(" — ");
      const kind = response.status >= 500 ? "network" : "api";
      throw new PageFailure(kind, text, { status: response.status, code: error.code });
    }
    return answer;
  }

  function walletKind(error) {
    if (error instanceof PageFailure) return error.kind;
    const code = error && error.code;
    if (code === 4001) return "rejected";
    if (code === 4100 || code === -32002) return "locked";
    if (code === 4902) return "chain-unknown";
    return "wallet";
  }

  function walletMessage(error) {
    return (error && error.message) || String(error);
  }

  async function connect(provider) {
    const accounts = await provider.request({ method: "eth_requestAccounts" });
    if (!Array.isArray(accounts) || accounts.length === 0) {
      throw new PageFailure("locked", "The wallet shared no account.");
    }
    return accounts;
  }

  async function activeChain(provider) {
    const hex = await provider.request({ method: "eth_chainId" });
    return Number.parseInt(String(hex), 16);
  }

  function lockedState(retry) {
    setState("locked", "Your wallet is locked",
      "The wallet shared no account, or has a request waiting. Open the wallet, unlock it, then try again.",
      [button("Try again", retry)]);
  }

  function noWalletState(cliText) {
    setState("no-wallet", "No browser wallet found",
      "Install a browser wallet that supports EIP-6963 or EIP-1193 (for example MetaMask, Rabby or " +
      "Coinbase Wallet) and reload this page. Or use the terminal instead:",
      [codeBlock(cliText)]);
  }

  async function whenWalletAppears(ready, cliText) {
    const provider = await discover();
    if (provider) { ready(); return; }
    noWalletState(cliText);
    onProvidersChanged = () => { onProvidersChanged = () => {}; ready(); };
  }

  // ---- signing page ----

  function signPage() {
    const body = document.body.dataset;
    const token = body.token;
    const wanted = Number(body.chainId);
    const deadline = Number(body.deadline);
    const issueUrl = body.issueUrl;
    const signers = new Set((body.signers || "").split(",").filter(Boolean));
    const connectButton = $("connect-button");
    const signButton = $("sign-button");
    let provider = null;

    function ready() {
      connectButton.disabled = false;
      setState("ready", "Wallet found",
        "Connect it and pick the account that signs; the wallet shows the typed data before signing.");
    }

    function expired() {
      return Date.now() / 1000 >= deadline;
    }

    function expiredState() {
      signButton.disabled = true;
      setState("expired", "This signing link has expired",
        "The intent's deadline has passed, so nothing can be signed and your wallet was not asked. " +
        "Comment the bounty again on the issue to get a fresh link.",
        [link("Go to the issue", issueUrl)]);
    }

    function alreadySignedState(address) {
      setState("already-signed", "This wallet already signed this bounty",
        `${address} has signed this intent; each wallet signs an intent once. Nothing more to do, ` +
        "or pick another account to add an offer.",
        [link("Go to the issue", issueUrl)]);
    }

    async function checkChain() {
      const current = await activeChain(provider);
      if (current === wanted) return true;
      setState("wrong-chain", "Your wallet is on another network",
        `The wallet is on ${chainName(current)}; this bounty is signed for ${chainName(wanted)}. ` +
        "Switching only changes what the wallet shows; nothing is sent on chain.",
        [button(`Switch to ${chainName(wanted)}`, switchChain)]);
      return false;
    }

    async function switchChain() {
      try {
        await provider.request({
          method: "wallet_switchEthereumChain",
          params: [{ chainId: "0x" + wanted.toString(16) }],
        });
        if (await checkChain()) accountChosen();
      } catch (error) {
        const kind = walletKind(error);
        if (kind === "rejected") {
          setState("switch-rejected", "You declined switching the network",
            `The signature needs ${chainName(wanted)}. Switch in the wallet yourself, or try again.`,
            [button("Switch network", switchChain)]);
        } else if (kind === "chain-unknown") {
          setState("chain-unknown", "Your wallet does not know this network",
            `Add ${chainName(wanted)} to the wallet (or use a wallet that has it), then try again.`,
            [button("Try again", switchChain)]);
        } else {
          failed(error);
        }
      }
    }

    function accountChosen() {
      const address = selectedAccount();
      if (!address) return;
      if (signers.has(address.toLowerCase())) {
        signButton.disabled = true;
        alreadySignedState(address);
        return;
      }
      signButton.disabled = false;
      setState("ready", "Ready to sign",
        `${address} will sign ${body.summary}. Your wallet shows the typed data before signing.`);
    }

    async function connectNow() {
      connectButton.disabled = true;
      try {
        provider = chosenProvider();
        if (!provider) { noWalletState($("cli-command").textContent); return; }
        setState("connecting", "Waiting for the wallet…", "Approve the connection in your wallet.");
        showAccounts(await connect(provider));
        if (typeof provider.on === "function") {
          provider.on("chainChanged", () => { checkChain().then((ok) => ok && accountChosen(), failed); });
          provider.on("accountsChanged", (accounts) => { if (accounts && accounts.length) { showAccounts(accounts); accountChosen(); } });
        }
        if (expired()) { expiredState(); return; }
        if (await checkChain()) accountChosen();
      } catch (error) {
        failed(error);
      } finally {
        connectButton.disabled = false;
      }
    }

    function failed(error) {
      signButton.disabled = false;
      const kind = walletKind(error);
      if (kind === "locked") {
        lockedState(connectNow);
      } else if (kind === "rejected") {
        setState("rejected", "You declined in the wallet",
          "Nothing was signed and nothing was published. You can try again whenever you like.",
          [button("Try again", signNow)]);
      } else if (kind === "network") {
        setState("network", "Network error",
          walletMessage(error) + " Retrying is safe: each wallet's signature counts once.",
          [button("Retry", signNow)]);
      } else if (kind === "api" && error.status === 410) {
        expiredState();
      } else if (kind === "api" && error.status === 409) {
        alreadySignedState(selectedAccount() || "This wallet");
      } else if (kind === "api" && error.status === 400) {
        setState("refused", "kdemo refused the signature",
          walletMessage(error) + ". Nothing was published. The wallet may have signed other data " +
          "than this page asked for: try again, or use another wallet.",
          [button("Try again", signNow)]);
      } else {
        setState("error", "That did not work", walletMessage(error), [button("Try again", signNow)]);
      }
    }

    function showSigned(intent, address, signature) {
      const facts = $("signed-facts");
      facts.replaceChildren();
      const rows = [
        ["Repository", intent.repository], ["Issue", "#" + intent.number],
        ["Amount", intent.amount + " " + intent.denomination], ["Deadline", intent.expires_at],
        ["Signed by", address], ["Signature", signature],
      ];
      for (const [term, value] of rows) {
        const dt = document.createElement("dt");
        dt.textContent = term;
        const dd = document.createElement("dd");
        dd.textContent = value;
        facts.append(dt, dd);
      }
      $("signed-box").classList.remove("hidden");
    }

    async function signNow() {
      signButton.disabled = true;
      const address = selectedAccount();
      try {
        if (!provider || !address) { await connectNow(); return; }
        if (expired()) { expiredState(); return; }
        if (!(await checkChain())) return;
        const intent = await api("GET", "/api/intents/" + encodeURIComponent(token));
        setState("waiting", "Waiting for your signature…",
          `Check the wallet: it asks ${address} to sign ${body.summary}.`);
        const signature = await provider.request({
          method: "eth_signTypedData_v4",
          params: [address, JSON.stringify(intent.typed_data)],
        });
        setState("verifying", "Verifying the signature…", "");
        const answer = await api("POST", "/api/signatures", { token, address, signature });
        if (answer.status === "already_signed") { alreadySignedState(address); return; }
        signers.add(address.toLowerCase());
        showSigned(intent, address, signature);
        setState("success", "Signed: your pledge is recorded",
          `${address} signed ${body.summary}. Taking you to the issue…`,
          [link("Go to the issue now", answer.redirect)]);
        setTimeout(() => window.location.assign(answer.redirect), REDIRECT_DELAY_MS);
      } catch (error) {
        failed(error);
      }
    }

    connectButton.addEventListener("click", connectNow);
    signButton.addEventListener("click", signNow);
    $("account-select").addEventListener("change", accountChosen);
    if (expired()) { expiredState(); return; }
    whenWalletAppears(ready, $("cli-command").textContent);
  }

  // ---- link page ----

  function linkPage() {
    const connectButton = $("connect-button");
    const prepareButton = $("prepare-button");
    const signButton = $("link-button");
    const login = $("login");
    let provider = null;
    let pending = null; // {message, address}

    function ready() {
      connectButton.disabled = false;
      setState("ready", "Wallet found", "Enter your GitHub login, then connect the wallet.");
    }

    function failed(error, retry) {
      const kind = walletKind(error);
      if (kind === "locked") {
        lockedState(connectNow);
      } else if (kind === "rejected") {
        setState("rejected", "You declined in the wallet",
          "Nothing was signed and nothing was sent. You can try again whenever you like.",
          [button("Try again", retry)]);
      } else if (kind === "network") {
        setState("network", "Network error", walletMessage(error), [button("Retry", retry)]);
      } else if (kind === "api" && error.status === 410) {
        setState("expired", "The message expired", "Show a fresh message and sign that one.",
          [button("Show a fresh message", prepareNow)]);
      } else {
        setState("error", "That did not work", walletMessage(error), [button("Try again", retry)]);
      }
    }

    function checkLogin() {
      const value = login.value.trim();
      const ok = value !== "" && login.checkValidity();
      login.setAttribute("aria-invalid", ok ? "false" : "true");
      if (!ok) {
        setState("invalid-login", "Enter your GitHub login",
          "GitHub login: letters, digits and single hyphens, up to 39 characters (for example octocat).");
        login.focus();
      }
      return ok ? value : null;
    }

    async function connectNow() {
      connectButton.disabled = true;
      try {
        provider = chosenProvider();
        if (!provider) { noWalletState("kdemo link-identity --github <login> --key 0x…"); return; }
        setState("connecting", "Waiting for the wallet…", "Approve the connection in your wallet.");
        showAccounts(await connect(provider));
        setState("connected", "Wallet connected", "Pick the account to link, then show the message it will sign.");
      } catch (error) {
        failed(error, connectNow);
      } finally {
        connectButton.disabled = false;
      }
    }

    function showMessage(message) {
      $("message-text").textContent = message;
      const fields = $("message-fields");
      fields.replaceChildren();
      const lines = message.split("\n");
      const rows = [["Domain", lines[0].replace(/ wants you to sign in with your Ethereum account:$/, "")],
        ["Address", lines[1] || ""], ["Statement", lines[3] || ""]];
      for (const line of lines.slice(5)) {
        const at = line.indexOf(": ");
        if (at > 0) rows.push([line.slice(0, at), line.slice(at + 2)]);
      }
      for (const [term, value] of rows) {
        const dt = document.createElement("dt");
        dt.textContent = term;
        const dd = document.createElement("dd");
        dd.textContent = value;
        fields.append(dt, dd);
      }
      $("message-box").classList.remove("hidden");
    }

    async function prepareNow() {
      const name = checkLogin();
      if (!name) return;
      const address = selectedAccount();
      if (!provider || !address) { await connectNow(); return; }
      prepareButton.disabled = true;
      try {
        const query = new URLSearchParams({ address, login: name });
        const answer = await api("GET", "/api/link-message?" + query.toString());
        pending = { message: answer.message, address };
        showMessage(answer.message);
        setState("message", "Read the message, then sign it",
          `It links ${address} to the GitHub account ${name}; it expires at ${answer.expires}.`);
        signButton.focus();
      } catch (error) {
        failed(error, prepareNow);
      } finally {
        prepareButton.disabled = false;
      }
    }

    async function signNow() {
      if (!pending) return;
      signButton.disabled = true;
      try {
        const hex = "0x" + Array.from(new TextEncoder().encode(pending.message),
          (b) => b.toString(16).padStart(2, "0")).join("");
        setState("waiting", "Waiting for your signature…", "Check the wallet: it shows the same message.");
        const signature = await provider.request({ method: "personal_sign", params: [hex, pending.address] });
        const answer = await api("POST", "/api/links", { message: pending.message, signature });
        history.replaceState(null, "", "/link?code=" + encodeURIComponent(answer.code));
        showCode(answer.code);
      } catch (error) {
        failed(error, signNow);
      } finally {
        signButton.disabled = false;
      }
    }

    connectButton.addEventListener("click", connectNow);
    prepareButton.addEventListener("click", prepareNow);
    signButton.addEventListener("click", signNow);
    $("account-select").addEventListener("change", () => { $("message-box").classList.add("hidden"); pending = null; });
    whenWalletAppears(ready, "kdemo link-identity --github <login> --key 0x…");
  }

  function showCode(code) {
    $("link-form").classList.add("hidden");
    $("code-box").classList.remove("hidden");
    const comment = "$link:" + code + "$";
    $("comment-text").textContent = comment;
    $("copy-button").addEventListener("click", () => {
      const done = () => { $("copy-button").textContent = "Copied"; };
      if (navigator.clipboard) navigator.clipboard.writeText(comment).then(done, () => {});
    });
    setState("code", "Signed. Now comment the code on GitHub",
      "Post the comment below from the GitHub account you named; this page follows the link's status.");
    codeState("pending", "checking…");
    poll(code, 0);
  }

  function codeState(state, text) {
    const node = $("code-state");
    node.dataset.linkState = state;
    node.textContent = text;
  }

  async function poll(code, attempt) {
    let again = true;
    try {
      const status = await api("GET", "/api/links/" + encodeURIComponent(code));
      if (status.state === "linked") {
        codeState("linked", `confirmed: ${status.address} is linked to github:${status.login}`);
        setState("linked", "Linked", `${status.address} is now linked to the GitHub account ${status.login}.`);
        again = false;
      } else if (status.state === "refused") {
        codeState("refused", "refused: " + (status.reason || "no reason given"));
        setState("refused", "The link was refused", (status.reason || "no reason given") +
          ". Nothing was linked; start again with a fresh code.", [link("Start again", "/link")]);
        again = false;
      } else {
        codeState("pending", "waiting for your comment on GitHub…");
      }
    } catch (error) {
      // 404 right after posting: identity has not read the request from the bus yet
      codeState("pending", error.status === 404 && attempt < 20
        ? "waiting for identity…" : "status unavailable (" + walletMessage(error) + "); retrying…");
    }
    if (again) setTimeout(() => poll(code, attempt + 1), POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.body.dataset.page;
    if (page === "sign") signPage();
    if (page === "link") {
      const code = document.body.dataset.code;
      if (code) showCode(code); else linkPage();
    }
  });
})();
