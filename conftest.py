"""Collection rules for the whole repository (tests/conftest.py holds the fixtures).

The UI's page scripts draw when imported (Streamlit runs them top to bottom), so doctest
collection skips them; their helpers' doctests live in ui/render.py and ui/state.py.
"""

collect_ignore = ["ui/main.py", "ui/chat.py", "ui/library.py", "ui/reader.py", "ui/eval_report.py"]
