#!/usr/bin/env python3
"""An OpenID Connect relying party built on authlib, run against Tessera.

Usage: oidc_rp.py CONFIG_JSON

CONFIG_JSON: {"issuer", "username", "password", "clients": [{"alg",
"public": CLIENT, "confidential": CLIENT}, ...]}, one entry per ID-token
algorithm, where CLIENT is {"client_id", "client_secret" (null for a public
client), "redirect_uri", "other_redirect_uri" (also registered),
"post_logout_redirect_uri"}.

What it does, as an application using authlib would:
- discovery: both metadata documents, validated with authlib's RFC 8414,
  OpenID Discovery and RP-Initiated Logout metadata classes;
- the authorization URL from authlib's OAuth2Session (PKCE S256, state,
  nonce); the sign-in and consent pages are driven with `requests` (the
  forms parsed, never followed into the application: the redirect to the
  registered redirect URI is caught); `state` and `iss` (RFC 9207) checked;
- the code exchanged by authlib: public client (`none` + PKCE),
  confidential client by `client_secret_basic` and by `client_secret_post`;
- the ID token checked the way authlib's own OpenID client does it: joserfc
  (authlib's JOSE library) against the JWKS from `jwks_uri`, restricted to
  the client's registered algorithm, then authlib's CodeIDToken claims
  (iss, aud, nonce, at_hash, times); that the checks bite is shown by
  refusing a tampered signature, another access token (at_hash), another
  nonce and another audience;
- UserInfo, refresh by authlib, RP-initiated logout (`end_session_endpoint`
  with `id_token_hint`, `post_logout_redirect_uri`, `state`: the refresh
  token is refused afterwards);
- the hostile cases from the client's side: wrong code_verifier, code reuse
  (the second exchange refused, and the first exchange's tokens with it),
  redirect_uri mismatch at the exchange, a code taken to another client, a
  confidential client without its secret, a refresh token taken to
  another client.

Prints one line per step and `all good` at the end, exit status 0; on the
first failure prints the reason to stderr and exits 1.
"""

import json
import sys
import time
import warnings
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

try:
    import requests
    from authlib.common.security import generate_token
    from authlib.integrations.base_client.sync_openid import OpenIDMixin
    from authlib.integrations.requests_client import OAuth2Session, OAuthError
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
    from authlib.oidc import rpinitiated
    from authlib.oidc.core import CodeIDToken, UserInfo
    from authlib.oidc.discovery import OpenIDProviderMetadata
    from joserfc import jwt as jose_jwt
    from joserfc.errors import InvalidKeyIdError, JoseError, SecurityWarning
    from joserfc.jwk import KeySet
    from joserfc.jws import JWSRegistry, extract_compact
except ImportError as e:  # pragma: no cover - environment problem
    print(f"oidc_rp.py: {e}; pip install authlib requests", file=sys.stderr)
    sys.exit(1)

TIMEOUT = 10
SCOPE = "openid profile"
# Clocks are the same machine's; a little slack for a slow run.
LEEWAY = 5
# Nothing here may be silently deprecated: a warning is a failure to look
# at. One is known and shown instead: RFC 9864 deprecates the polymorphic
# "EdDSA" identifier (for "Ed25519"), which JOSE libraries still accept.
warnings.simplefilter("error")
warnings.filterwarnings("default", message="EdDSA is deprecated", category=SecurityWarning)


def step(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def refused(error, call, *args, **kwargs):
    """`call` must fail with the OAuth error `error` (as authlib raises it)."""
    try:
        result = call(*args, **kwargs)
    except OAuthError as e:
        check(e.error == error, f"expected {error}, got {e.error}: {e.description}")
        return
    # Names only: the answer holds live tokens.
    shown = sorted(result) if isinstance(result, dict) else type(result).__name__
    raise AssertionError(f"expected {error}, but it succeeded (answer with {shown})")


# ---------------------------------------------------------------- discovery


def discover(issuer):
    """Both metadata documents, validated by authlib; the OpenID one."""
    docs = {}
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        r = requests.get(issuer + path, timeout=TIMEOUT)
        check(r.status_code == 200, f"{path}: {r.status_code}")
        docs[path] = r.json()
    oidc = OpenIDProviderMetadata(docs["/.well-known/openid-configuration"])
    oidc.validate(metadata_classes=[rpinitiated.OpenIDProviderMetadata])
    oauth = AuthorizationServerMetadata(docs["/.well-known/oauth-authorization-server"])
    oauth.validate()
    for doc in (oidc, oauth):
        check(doc["issuer"] == issuer, f"issuer {doc['issuer']!r} is not {issuer!r}")
        check(doc["code_challenge_methods_supported"] == ["S256"], doc)
        check(doc["response_types_supported"] == ["code"], doc)
        check(doc.get("authorization_response_iss_parameter_supported") is True, doc)
        check(
            {"none", "client_secret_basic", "client_secret_post"}
            <= set(doc["token_endpoint_auth_methods_supported"]),
            doc,
        )
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            check(doc[name] == oidc[name], f"{name} differs between the documents")
    check("RS256" in oidc["id_token_signing_alg_values_supported"], "RS256 must be offered")
    check("end_session_endpoint" in oidc, "no end_session_endpoint")
    return oidc


class Keys:
    """The JWKS from `jwks_uri`, fetched again once when a token names a
    key it lacks (as authlib's OpenID client does: a key made after the
    set was fetched)."""

    def __init__(self, metadata):
        self.uri = metadata["jwks_uri"]
        self.keys = self.fetch()

    def fetch(self):
        r = requests.get(self.uri, timeout=TIMEOUT)
        check(r.status_code == 200, f"jwks_uri: {r.status_code}")
        return KeySet.import_key_set(r.json())

    def decode(self, token, algorithms):
        registry = JWSRegistry(algorithms=algorithms)
        try:
            return jose_jwt.decode(token, self.keys, registry=registry)
        except InvalidKeyIdError:
            kid = extract_compact(token.encode()).headers().get("kid")
            step(f"note: key {kid!r} was not in the key set fetched before; fetching it again")
            self.keys = self.fetch()
            return jose_jwt.decode(token, self.keys, registry=registry)


# ------------------------------------------------------------- the browser


class Forms(HTMLParser):
    """The forms of a page: action, and fields with their values (for
    submit buttons, name and value, kept apart)."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}, "buttons": []})
        elif self.forms and tag == "input" and a.get("name"):
            if a.get("type") == "checkbox":
                return
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""
        elif self.forms and tag == "button" and a.get("type") == "submit":
            self.forms[-1]["buttons"].append((a.get("name"), a.get("value")))


def forms_of(html):
    parser = Forms()
    parser.feed(html)
    return parser.forms


class Browser:
    """A user agent: a cookie jar, redirects followed by hand up to the
    application's redirect URI, which it reports instead of loading."""

    def __init__(self, issuer, username, password):
        self.issuer = issuer
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(issuer))
        self.username = username
        self.password = password
        self.http = requests.Session()

    def visit(self, url, stop_at):
        """Follows `url` through the pages, signing in and allowing as
        asked, until a redirect to `stop_at`: that URL, and the pages seen."""
        seen = []
        method, data = "GET", None
        for _ in range(10):
            headers = {"Origin": self.origin} if method == "POST" else {}
            r = self.http.request(
                method, url, data=data, headers=headers, allow_redirects=False, timeout=TIMEOUT
            )
            if r.is_redirect:
                url = urljoin(url, r.headers["location"])
                if url.startswith(stop_at):
                    return url, seen
                check(url.startswith(self.issuer + "/"), f"sent outside the server: {url}")
                method, data = "GET", None
                continue
            check(r.status_code == 200, f"{method} {url}: {r.status_code}\n{r.text[:2000]}")
            forms = forms_of(r.text)
            login = [f for f in forms if f["action"] == "/login"]
            consent = [f for f in forms if f["action"] == "/v1/authorize"]
            if login:
                seen.append("sign-in")
                data = dict(login[0]["fields"], username=self.username, password=self.password)
            elif consent:
                seen.append("consent")
                check(("decision", "allow") in consent[0]["buttons"], consent[0])
                data = dict(consent[0]["fields"], decision="allow")
            else:
                raise AssertionError(f"unexpected page at {url}:\n{r.text[:2000]}")
            url = urljoin(self.issuer + "/", (login or consent)[0]["action"])
            method = "POST"
        raise AssertionError(f"too many steps; last at {url}")


# ---------------------------------------------------------- the application


class App:
    """One registered client, as the application holding it sees it."""

    def __init__(self, name, entry, alg, auth_method, metadata):
        self.name = name
        self.alg = alg
        self.client_id = entry["client_id"]
        self.redirect_uri = entry["redirect_uri"]
        self.other_redirect_uri = entry["other_redirect_uri"]
        self.post_logout_redirect_uri = entry["post_logout_redirect_uri"]
        self.metadata = metadata
        self.secret = entry.get("client_secret")
        self.auth_method = auth_method

    def session(self, token=None):
        """An authlib OAuth2Session for this client (PKCE S256)."""
        return OAuth2Session(
            client_id=self.client_id,
            client_secret=self.secret,
            token_endpoint_auth_method=self.auth_method,
            redirect_uri=self.redirect_uri,
            scope=SCOPE,
            code_challenge_method="S256",
            token=token,
        )


class Authorization:
    """An authorization request and, once the browser came back, its code."""

    def __init__(self, app, browser):
        self.app = app
        self.session = app.session()
        self.verifier = generate_token(64)
        self.nonce = generate_token(24)
        url, self.state = self.session.create_authorization_url(
            app.metadata["authorization_endpoint"],
            code_verifier=self.verifier,
            nonce=self.nonce,
        )
        query = dict(parse_qsl(urlsplit(url).query))
        check(query.get("code_challenge_method") == "S256", url)
        self.response, self.pages = browser.visit(url, app.redirect_uri + "?")
        params = dict(parse_qsl(urlsplit(self.response).query))
        check("error" not in params, f"{app.name}: refused: {params}")
        check(params.get("state") == self.state, f"{app.name}: state {params.get('state')!r}")
        # RFC 9207: the response names its issuer; a mix-up is refused here.
        check(
            params.get("iss") == app.metadata["issuer"],
            f"{app.name}: iss {params.get('iss')!r}",
        )
        self.code = params["code"]

    def exchange(self, session=None, **kwargs):
        """The code exchanged by authlib (which checks `state` again)."""
        session = session or self.session
        kwargs.setdefault("code_verifier", self.verifier)
        return session.fetch_token(
            self.app.metadata["token_endpoint"],
            authorization_response=self.response,
            state=self.state,
            **kwargs,
        )


def id_token_claims(app, keys, token, nonce, access_token=None, client_id=None):
    """The ID token's claims, checked as authlib's OpenID client checks them
    (signature by the JWKS, the client's algorithm only, then CodeIDToken)."""
    decoded = keys.decode(token["id_token"], [app.alg])
    check(decoded.header["alg"] == app.alg, f"{app.name}: alg {decoded.header['alg']}")
    client_id = client_id or app.client_id
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={
            "iss": {"essential": True, "value": app.metadata["issuer"]},
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True},
            "auth_time": {"essential": True},
            "nonce": {"essential": True},
            "at_hash": {"essential": True},
            "sid": {"essential": True},
        },
        params={
            "nonce": nonce,
            "client_id": client_id,
            "access_token": access_token or token["access_token"],
        },
    )
    claims.validate(leeway=LEEWAY)
    return claims


def must_refuse_id_token(what, call):
    try:
        call()
    except JoseError:
        return
    raise AssertionError(f"an ID token with {what} was accepted")


def check_id_token(app, keys, token, nonce):
    claims = id_token_claims(app, keys, token, nonce)
    check(claims["preferred_username"], claims)
    check(claims["iat"] <= time.time() + LEEWAY, claims)
    header, payload, signature = token["id_token"].split(".")
    flipped = ("A" if signature[10] != "A" else "B").join([signature[:10], signature[11:]])
    tampered = dict(token, id_token=f"{header}.{payload}.{flipped}")
    must_refuse_id_token("a tampered signature", lambda: id_token_claims(app, keys, tampered, nonce))
    must_refuse_id_token(
        "another access token's at_hash",
        lambda: id_token_claims(app, keys, token, nonce, access_token=token["refresh_token"]),
    )
    must_refuse_id_token("another nonce", lambda: id_token_claims(app, keys, token, "other"))
    must_refuse_id_token(
        "another audience",
        lambda: id_token_claims(app, keys, token, nonce, client_id="someone-else"),
    )
    other_algs = [a for a in ("RS256", "ES256", "EdDSA") if a != app.alg]
    try:
        keys.decode(token["id_token"], other_algs)
    except JoseError:
        pass
    else:
        raise AssertionError(f"{app.name}: an ID token in {app.alg} passed as {other_algs}")
    step(f"{app.name}: ID token {app.alg} verified (signature, iss, aud, nonce, at_hash, times)")
    return claims


def userinfo(app, token):
    """UserInfo with the access token, as authlib's session sends it."""
    r = app.session(token).get(app.metadata["userinfo_endpoint"], timeout=TIMEOUT)
    return r.status_code, (UserInfo(r.json()) if r.status_code == 200 else None)


def refresh(app, token):
    return app.session(token).refresh_token(
        app.metadata["token_endpoint"], refresh_token=token["refresh_token"]
    )


# -------------------------------------------------------------------- steps


def sign_in(app, keys, browser, username, first=False):
    """The whole flow for `app`: code, exchange, ID token, UserInfo,
    refresh. Returns the tokens and the ID token's claims."""
    auth = Authorization(app, browser)
    if first:
        check(auth.pages == ["sign-in", "consent"], f"{app.name}: pages {auth.pages}")
    token = auth.exchange()
    check(token["token_type"] == "Bearer", token)
    check(set(token["scope"].split()) == set(SCOPE.split()), token)
    claims = check_id_token(app, keys, token, auth.nonce)

    status, info = userinfo(app, token)
    check(status == 200, f"{app.name}: userinfo {status}")
    check(info["sub"] == claims["sub"], f"{app.name}: userinfo sub {info['sub']}")
    check(info["preferred_username"] == username, info)

    fresh = refresh(app, token)
    check(fresh["refresh_token"] != token["refresh_token"], "the refresh token did not rotate")
    check(fresh["access_token"] != token["access_token"], "the access token did not change")
    status, info = userinfo(app, fresh)
    check(status == 200 and info["sub"] == claims["sub"], f"{app.name}: refreshed userinfo {status}")
    step(f"{app.name} ({app.auth_method}): code, exchange, UserInfo, refresh")
    return fresh, claims, token["id_token"]


def wrong_verifier(app, browser):
    auth = Authorization(app, browser)
    refused("invalid_grant", auth.exchange, code_verifier=generate_token(64))
    # The code was spent by the failed attempt.
    refused("invalid_grant", auth.exchange)
    step(f"{app.name}: a wrong code_verifier is refused and spends the code")


def code_reuse(app, browser):
    auth = Authorization(app, browser)
    token = auth.exchange()
    refused("invalid_grant", auth.exchange, session=app.session())
    # The reuse revoked what the first exchange issued.
    refused("invalid_grant", refresh, app, token)
    status, _ = userinfo(app, token)
    check(status == 401, f"{app.name}: the first exchange's access token still works ({status})")
    step(f"{app.name}: a reused code is refused and revokes the first exchange's tokens")


def redirect_mismatch(app, browser):
    auth = Authorization(app, browser)
    # Registered too, but not the one the code was issued for.
    refused("invalid_grant", auth.exchange, redirect_uri=app.other_redirect_uri)
    step(f"{app.name}: a redirect_uri other than the authorization's is refused at the exchange")


def cross_client(app, other, browser):
    """A code issued to `app` taken to `other`, with the right verifier."""
    auth = Authorization(app, browser)
    refused("invalid_grant", auth.exchange, session=other.session())
    step(f"{app.name}: its code is refused to {other.name}")


def secret_required(app, browser):
    auth = Authorization(app, browser)
    bare = OAuth2Session(
        client_id=app.client_id,
        token_endpoint_auth_method="none",
        redirect_uri=app.redirect_uri,
        code_challenge_method="S256",
    )
    refused("invalid_client", auth.exchange, session=bare)
    # The code survives a failed client authentication.
    check(auth.exchange()["access_token"], "no access token")
    step(f"{app.name}: without its secret the client is refused (invalid_client)")


def refresh_bound_to_client(app, other, token):
    """A confidential client's refresh token is no good to anyone else:
    neither without the client's secret nor with another client's
    credentials (OAuth 2.1 §4.3.1)."""
    stranger = App(other.name, {
        "client_id": other.client_id,
        "client_secret": other.secret,
        "redirect_uri": other.redirect_uri,
        "other_redirect_uri": other.other_redirect_uri,
        "post_logout_redirect_uri": other.post_logout_redirect_uri,
    }, other.alg, other.auth_method, other.metadata)
    refused("invalid_grant", refresh, stranger, token)
    anonymous = App(app.name + " without its secret", {
        "client_id": app.client_id,
        "client_secret": None,
        "redirect_uri": app.redirect_uri,
        "other_redirect_uri": app.other_redirect_uri,
        "post_logout_redirect_uri": app.post_logout_redirect_uri,
    }, app.alg, "none", app.metadata)
    refused("invalid_client", refresh, anonymous, token)
    # The refused attempts did not spend it.
    check(refresh(app, token)["access_token"], "no access token")
    step(f"{app.name}: its refresh token is refused to {other.name} and without its secret")


class Logout(OpenIDMixin):
    """authlib's RP-initiated logout URL builder, over our metadata."""

    def __init__(self, metadata):
        self.metadata = metadata

    def load_server_metadata(self):
        return self.metadata


def rp_logout(app, browser, token, id_token):
    """RP-initiated logout: back to the registered address with `state`;
    the session is over (refresh refused, access token refused), and so is
    the browser's own session (the next authorization asks to sign in)."""
    request = Logout(app.metadata).create_logout_url(
        post_logout_redirect_uri=app.post_logout_redirect_uri,
        id_token_hint=id_token,
        state=generate_token(20),
    )
    url, _ = browser.visit(request["url"], app.post_logout_redirect_uri)
    params = dict(parse_qsl(urlsplit(url).query))
    check(url.split("?")[0] == app.post_logout_redirect_uri, url)
    check(params.get("state") == request["state"], f"logout state {params}")
    refused("invalid_grant", refresh, app, token)
    status, _ = userinfo(app, token)
    check(status == 401, f"{app.name}: access token after logout: {status}")
    auth = Authorization(app, browser)
    check(auth.pages[:1] == ["sign-in"], f"{app.name}: after logout, pages {auth.pages}")
    step(f"{app.name}: RP-initiated logout ends the session and returns with state")


def run(config):
    issuer = config["issuer"]
    metadata = discover(issuer)
    check(
        sorted(c["alg"] for c in config["clients"])
        == sorted(metadata["id_token_signing_alg_values_supported"]),
        "a client for every ID-token algorithm the discovery document lists",
    )
    keys = Keys(metadata)
    step(f"discovery validated by authlib; ID-token algorithms {metadata['id_token_signing_alg_values_supported']}")

    username, password = config["username"], config["password"]
    for entry in config["clients"]:
        alg = entry["alg"]
        public = App(f"public {alg}", entry["public"], alg, "none", metadata)
        basic = App(f"confidential {alg}", entry["confidential"], alg, "client_secret_basic", metadata)
        post = App(f"confidential {alg}", entry["confidential"], alg, "client_secret_post", metadata)
        browser = Browser(issuer, username, password)

        sign_in(public, keys, browser, username, first=True)
        sign_in(basic, keys, browser, username)
        token, _, id_token = sign_in(post, keys, browser, username)

        wrong_verifier(public, browser)
        code_reuse(public, browser)
        code_reuse(basic, browser)
        redirect_mismatch(public, browser)
        redirect_mismatch(post, browser)
        cross_client(public, basic, browser)
        cross_client(basic, public, browser)
        secret_required(basic, browser)
        refresh_bound_to_client(basic, public, token)

        token, _, id_token = sign_in(public, keys, browser, username)
        rp_logout(public, browser, token, id_token)


def main(argv):
    if len(argv) != 2:
        print("usage: oidc_rp.py CONFIG_JSON", file=sys.stderr)
        return 1
    try:
        run(json.loads(argv[1]))
    except Exception as e:  # every failure is reported, never passed over
        print(f"oidc_rp.py: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print("all good")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
