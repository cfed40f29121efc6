"""paracite's Streamlit app: only the router. Each page is one file beside this one.

Run: streamlit run ui/app.py   (index: $RAG_INDEX or .rag/index; uploads go to $RAG_CORPUS or corpus/)
"""

from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent

st.set_page_config(page_title="paracite", page_icon=":material/format_quote:", layout="wide")
page = st.navigation([
    st.Page(HERE / "chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page(HERE / "library.py", title="Library", icon=":material/library_books:"),
    st.Page(HERE / "reader.py", title="Reader", icon=":material/menu_book:"),
    st.Page(HERE / "eval_report.py", title="Evals", icon=":material/monitoring:"),
])
page.run()
