// kdemo frontend: talk to the browser wallet (EIP-6963 discovery, EIP-1193 requests).
// Sign page: fetch the typed data for the token, eth_signTypedData_v4, post, go to the issue.
// Link page: fetch the SIWE message, personal_sign, post, show the code, poll its status.
"use strict";

(function () {
  const providers = new Map(); // EIP-6963 uuid -> {info, provider}

  window.addEventListener("eip6963:announceProvider", (event) => {
    const detail = event.detail;
    if (detail && detail.info && detail.provider) {
      providers.set(detail.info.uuid, detail);
      refreshChoice();
    }
  });

  function $(id) { return document.getElementById(id); }

  function say(id, text, kind) {
    const node = $(id);
    node.textContent = text;
    node.classList.toggle("bad", kind === "bad");
    node.classList.toggle("ok", kind === "ok");
  }

  function refreshChoice() {
    const select = $("wallet-select");
    if (!select) return;
    select.replaceChildren();
    for (const [uuid, detail] of providers) {
      const option = document.createElement("option");
      option.value = uuid;
      option.textContent = detail.info.name;
      select.append(option);
    }
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
    await new Promise((resolve) => setTimeout(resolve, 300));
    return chosenProvider();
  }

  async function firstAccount(provider) {
    const accounts = await provider.request({ method: "eth_requestAccounts" });
    if (!accounts || accounts.length === 0) throw new Error("the wallet shared no account");
    return accounts[0];
  }

  async function api(method, url, body) {
    const options = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    let answer = null;
    try { answer = await response.json(); } catch (_) { answer = null; }
    if (!response.ok) {
      const error = (answer && answer.error) || {};
      const text = [error.message || response.statusText, error.hint].filter(Boolean).join(" — ");
      const failure = new Error(text);
      failure.status = response.status;
      throw failure;
    }
    return answer;
  }

  function walletError(error) {
    if (error && error.code === 4001) return "You declined the request in the wallet.";
    return (error && error.message) || String(error);
  }

  // ---- signing page ----
  async function signPage() {
    const token = document.body.dataset.token;
    const button = $("sign-button");
    const provider = await discover();
    if (!provider) {
      say("sign-status", "No browser wallet found. Install one, or sign from a terminal (below).", "bad");
      return;
    }
    say("sign-status", "Ready: the wallet will show the typed data before signing.");
    button.disabled = false;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const intent = await api("GET", "/api/intents/" + encodeURIComponent(token));
        say("sign-status", "Waiting for the wallet…");
        const wallet = chosenProvider();
        const address = await firstAccount(wallet);
        const signature = await wallet.request({
          method: "eth_signTypedData_v4",
          params: [address, JSON.stringify(intent.typed_data)],
        });
        say("sign-status", "Verifying the signature…");
        const answer = await api("POST", "/api/signatures", { token, address, signature });
        const done = answer.status === "already_signed" ? "Already signed by this wallet." : "Signed.";
        say("sign-status", done + " Taking you to the issue…", "ok");
        window.location.assign(answer.redirect);
      } catch (error) {
        say("sign-status", walletError(error), "bad");
        button.disabled = false;
      }
    });
  }

  // ---- link page ----
  let pending = null; // {message}

  function showCode(code) {
    $("link-form").classList.add("hidden");
    $("code-box").classList.remove("hidden");
    $("comment-text").textContent = "$link:" + code + "$";
    poll(code, 0);
  }

  async function poll(code, attempt) {
    let again = true;
    try {
      const status = await api("GET", "/api/links/" + encodeURIComponent(code));
      if (status.state === "linked") {
        $("code-state").textContent = "linked " + status.address + " to github:" + status.login;
        again = false;
      } else if (status.state === "refused") {
        $("code-state").textContent = "refused: " + (status.reason || "no reason given");
        again = false;
      } else {
        $("code-state").textContent = "waiting for your comment on GitHub…";
      }
    } catch (error) {
      // 404 right after posting: identity has not read the request from the bus yet.
      $("code-state").textContent = error.status === 404 && attempt < 10
        ? "waiting for identity…" : "status unavailable: " + error.message;
    }
    if (again) setTimeout(() => poll(code, attempt + 1), 2000);
  }

  async function linkPage() {
    const code = document.body.dataset.code;
    if (code) { showCode(code); return; }
    const prepare = $("prepare-button");
    const sign = $("link-button");
    const provider = await discover();
    if (!provider) {
      say("link-status", "No browser wallet found. Install one, or link from a terminal (below).", "bad");
      return;
    }
    say("link-status", "Enter your GitHub login, then connect the wallet.");
    prepare.disabled = false;
    prepare.addEventListener("click", async () => {
      prepare.disabled = true;
      try {
        const login = $("login").value.trim();
        if (!login) throw new Error("Enter your GitHub login first.");
        const address = await firstAccount(chosenProvider());
        const query = new URLSearchParams({ address, login });
        pending = await api("GET", "/api/link-message?" + query.toString());
        pending.address = address;
        $("message-text").textContent = pending.message;
        $("message-box").classList.remove("hidden");
        say("link-status", "Read the message, then sign it.");
      } catch (error) {
        say("link-status", walletError(error), "bad");
      }
      prepare.disabled = false;
    });
    sign.addEventListener("click", async () => {
      if (!pending) return;
      sign.disabled = true;
      try {
        const hex = "0x" + Array.from(new TextEncoder().encode(pending.message),
          (b) => b.toString(16).padStart(2, "0")).join("");
        say("link-status", "Waiting for the wallet…");
        const signature = await chosenProvider().request({
          method: "personal_sign",
          params: [hex, pending.address],
        });
        const answer = await api("POST", "/api/links", { message: pending.message, signature });
        say("link-status", "Signed. Your one-time code:", "ok");
        history.replaceState(null, "", "/link?code=" + encodeURIComponent(answer.code));
        showCode(answer.code);
      } catch (error) {
        say("link-status", walletError(error), "bad");
      }
      sign.disabled = false;
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.body.dataset.page;
    if (page === "sign") signPage();
    if (page === "link") linkPage();
  });
})();
