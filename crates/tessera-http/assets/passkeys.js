// Passkeys on Tessera's pages: the one script they load (served from the
// binary under a hashed name; the pages' CSP allows scripts and requests
// from this origin only, and nothing inline).
//
// It drives the WebAuthn ceremonies of the JSON API: the server's options
// (binary values in base64url) become the ArrayBuffers
// navigator.credentials wants, and the browser's answer goes back as JSON.
// Elements opt in with data-passkey="sign-in" (/login), "register"
// (/account) or "second-factor" (the sign-in's second step); they stay
// hidden where the browser has no WebAuthn, and everything else on the
// pages works without this script.
"use strict";

(function () {
  function toBytes(b64url) {
    const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "===".slice((b64.length + 3) % 4);
    const raw = atob(padded);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let raw = "";
    for (let i = 0; i < bytes.length; i++) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
  }

  function creationOptions(options) {
    const pk = Object.assign({}, options.publicKey);
    pk.challenge = toBytes(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: toBytes(pk.user.id) });
    pk.excludeCredentials = withIds(pk.excludeCredentials);
    return { publicKey: pk };
  }

  function requestOptions(options) {
    const pk = Object.assign({}, options.publicKey);
    pk.challenge = toBytes(pk.challenge);
    pk.allowCredentials = withIds(pk.allowCredentials);
    return { publicKey: pk };
  }

  function attestationJSON(credential) {
    const r = credential.response;
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: toB64url(r.attestationObject),
        clientDataJSON: toB64url(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : [],
      },
      extensions: {},
    };
  }

  function assertionJSON(credential) {
    const r = credential.response;
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: toB64url(r.authenticatorData),
        clientDataJSON: toB64url(r.clientDataJSON),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : null,
      },
      extensions: {},
    };
  }

  // POSTs `body` (JSON) to `path`; the parsed answer, or an Error with the
  // problem's detail.
  async function post(path, body, csrf) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    if (csrf) {
      headers["X-CSRF-Token"] = csrf;
    }
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await response.json().catch(function () {
      return {};
    });
    if (!response.ok) {
      throw new Error(answer.detail || "The server refused (" + response.status + ").");
    }
    return answer;
  }

  function explain(error) {
    if (error && error.name === "NotAllowedError") {
      return "The passkey prompt was cancelled or timed out.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This device holds a passkey for your account already.";
    }
    return (error && error.message) || "Something went wrong. Try again.";
  }

  function wire(root, run) {
    const trigger = root.querySelector("[data-passkey-button]") || root;
    const error = root.querySelector("[data-passkey-error]");
    const busy = root.querySelectorAll("button");
    root.hidden = false;
    const event = root.tagName === "FORM" ? "submit" : "click";
    trigger.addEventListener(event, async function (e) {
      e.preventDefault();
      if (error) {
        error.hidden = true;
      }
      busy.forEach(function (b) {
        b.disabled = true;
      });
      try {
        await run();
      } catch (failure) {
        if (error) {
          error.textContent = explain(failure);
          error.hidden = false;
        }
      } finally {
        busy.forEach(function (b) {
          b.disabled = false;
        });
      }
    });
  }

  function signIn(root) {
    wire(root, async function () {
      const remember = document.querySelector("input[name=remember_me]");
      const started = await post("/v1/passkeys/authenticate/start");
      const credential = await navigator.credentials.get(requestOptions(started.options));
      await post("/v1/passkeys/authenticate/finish", {
        ceremony_id: started.ceremony_id,
        credential: assertionJSON(credential),
        remember_me: Boolean(remember && remember.checked),
      });
      window.location.assign(root.dataset.returnTo || "/account");
    });
  }

  function register(form) {
    wire(form, async function () {
      const csrf = form.querySelector("input[name=csrf_token]").value;
      const name = form.querySelector("input[name=name]").value;
      const started = await post("/v1/me/passkeys/register/start", undefined, csrf);
      const credential = await navigator.credentials.create(creationOptions(started.options));
      await post(
        "/v1/me/passkeys/register/finish",
        { ceremony_id: started.ceremony_id, name: name, credential: attestationJSON(credential) },
        csrf
      );
      window.location.assign("/account?done=passkey-added");
    });
  }

  function secondFactor(root) {
    wire(root, async function () {
      const token = root.dataset.mfaToken;
      const started = await post("/v1/session/mfa/passkey", { mfa_token: token });
      const credential = await navigator.credentials.get(requestOptions(started.options));
      await post("/v1/session/mfa", {
        mfa_token: token,
        ceremony_id: started.ceremony_id,
        credential: assertionJSON(credential),
      });
      window.location.assign(root.dataset.returnTo || "/account");
    });
  }

  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }
  document.querySelectorAll('[data-passkey="sign-in"]').forEach(signIn);
  document.querySelectorAll('[data-passkey="register"]').forEach(register);
  document.querySelectorAll('[data-passkey="second-factor"]').forEach(secondFactor);
})();
