"""Sign-in, sign-out and the account line in the sidebar: what the router draws around the pages.

With `[auth]` in `.streamlit/secrets.toml`, a visitor who is not signed in sees only `sign_in_page`;
one who is signed in but has no role (or when the roles file is broken) sees only `no_access_page`.
Signing in and out are Streamlit's own `st.login` and `st.logout` (OpenID Connect; the identity
cookie is signed with the `cookie_secret`). This module draws nothing when imported.
"""

from __future__ import annotations

import streamlit as st

from app.auth import LOCAL, Principal
from ui import render, state


def sign_in_page() -> None:
    st.title("paracite")
    st.markdown("Answers from your team's documents, every sentence cited to the paragraph it comes from.")
    st.markdown("**Sign in to continue.**")
    for provider in state.auth_providers():
        label = f"Sign in with {provider}" if provider else "Sign in"
        if st.button(label, type="primary", icon=":material/login:", key=f"sign-in-{provider or 'default'}"):
            st.login(provider)  # None: the unnamed provider of [auth]
    st.caption(
        "You go to your organisation's sign-in page and come back here. What you may do here "
        "(read, edit the library, administer) is set by this server's operator."
    )


def no_access_page(reason: str) -> None:
    st.title("No access")
    st.warning(render.md_escape(reason), icon=":material/block:")
    if st.button("Sign out", icon=":material/logout:", key="sign-out"):
        st.logout()


def sidebar(principal: Principal) -> None:
    with st.sidebar:
        if principal == LOCAL:
            st.caption("Single local user: no sign-in.")
            return
        st.caption(f"Signed in as **{render.md_escape(principal.label)}** · {principal.role}")
        if st.button("Sign out", icon=":material/logout:", key="sign-out"):
            st.logout()
