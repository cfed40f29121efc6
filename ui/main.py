"""paracite's Streamlit app: only the router, and the gate in front of it. Each page is one file beside this one.

Run: streamlit run ui/main.py   (index: $RAG_INDEX or .rag/index; uploads go to $RAG_CORPUS or corpus/)

With `[auth]` in `.streamlit/secrets.toml`, nothing but the sign-in page runs until the visitor is
signed in and holds a role (`ui.state.principal`); the pages are not even registered before that.
A secrets file that exists but cannot be read stops every page with an error (fail closed): it may
hold `[auth]`, and reading it as "no sign-in" would make every visitor the local admin.
"""

import logging
from pathlib import Path

import streamlit as st

from app.auth import RolesConfigError
from ui import account, state

HERE = Path(__file__).parent

st.set_page_config(page_title="paracite", page_icon=":material/format_quote:", layout="wide")
try:
    principal = state.principal()
except state.SecretsUnreadable as e:
    # Fails closed, as `rag serve` does on a broken tokens file: the file may hold [auth], so nobody is let in.
    logging.getLogger(__name__).error("%s; nobody is let in until it is fixed", e)
    st.error(
        "This server's secrets file cannot be read, so it cannot tell whether sign-in is required, and "
        "nobody is let in until the operator fixes it; the server's log says why.",
        icon=":material/error:",
    )
    st.stop()
except RolesConfigError as e:
    logging.getLogger(__name__).warning("%s", e)
    account.no_access_page(
        "The roles file of this server has an error, so nobody can be let in until the "
        "operator fixes it; the server's log says where."
    )
    st.stop()
if principal is None:
    if st.user.get("is_logged_in"):
        email = st.user.get("email") or "this account"
        account.no_access_page(
            f"You are signed in as {email}, but this account has no role here. "
            "Ask the operator to add you to the roles file."
        )
    else:
        account.sign_in_page()
    st.stop()
account.sidebar(principal)
page = st.navigation(
    [
        st.Page(HERE / "chat.py", title="Chat", icon=":material/chat:", default=True),
        st.Page(HERE / "library.py", title="Library", icon=":material/library_books:"),
        st.Page(HERE / "reader.py", title="Reader", icon=":material/menu_book:"),
        st.Page(HERE / "eval_report.py", title="Evals", icon=":material/monitoring:"),
    ]
)
page.run()
