"""Many chat sessions at once on the real Streamlit server, while an upload is ingested: time to first answer.

Run: .venv/bin/python bench/ui_load.py INDEX_DIR [--sessions 20] [--upload-docs 12] [--driver ws|browser]
(needs /usr/bin/chromium and Playwright; e.g. INDEX_DIR = .rag/index after `make ingest`)

Sessions are driven over Streamlit's own websocket protocol by default (`--driver ws`: what the page's
JavaScript sends, from this process, so 20 sessions cost the server what 20 visitors would, without
20 Chromium renderers competing with it for the CPU), or as Chromium pages (`--driver browser`:
closer to a person, but on a small machine the browsers, not the server, dominate the figures).
The upload always goes through a real Chromium page on the Library page.

What it does, bounded throughout (every wait has a timeout, and the whole run stops after --timeout):
1. copies INDEX_DIR into a temporary folder (the original is never written) and starts
   `streamlit run ui/main.py` on 127.0.0.1 only, with no LLM backends configured (extractive answers);
2. warms the server: one session asks one question and gets its answer;
3. starts an upload of --upload-docs generated text files on the Library page (ingested in the server),
   and as soon as it is under way opens --sessions chat sessions at once, each asking one question;
4. prints p50 / p95 / max time to first answer (the question submitted → its first citation chip on
   screen, and page opened → chip), and checks nothing was lost: every session got its cited answer,
   the upload finished with every document added, and `rag doctor` finds the copied index healthy.

Exit status 0 when every check passed, 1 otherwise. Not handled: an LLM backend (the sessions use
the extractive answerer), sessions on other machines, or load beyond one browser's pages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.questions import ANSWERED
from tests.browser import ARGS, CHROMIUM, free_port, stop_server, wait_healthy

QUESTIONS = ANSWERED
CHIP = "[data-testid=stChatMessage] button:has-text('· para.')"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.95)
    (2.0, 4.0)
    """
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))  # ceil, at least the first
    return ordered[int(rank) - 1]


def make_docs(folder: Path, n: int) -> list[Path]:
    """`n` made-up reports of about 1,500 words each, different enough to embed as separate passages."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        lines = [f"Load test report {i}", ""]
        for p in range(30):
            lines.append(
                " ".join(
                    f"In quarter {q % 4 + 1} of {2000 + (i + p + q) % 25}, plant {i}-{p} in region {q} shipped "
                    f"{(i + 1) * (p + 3) * (q + 7)} units of widget model {chr(65 + (p + q) % 26)}{i}."
                    for q in range(6)
                )
            )
            lines.append("")
        path = folder / f"load-report-{i:02d}.txt"
        path.write_text("\n".join(lines), encoding="utf-8")
        paths.append(path)
    return paths


async def ask_one(browser, url: str, question: str, timeout_ms: int) -> dict:
    context = await browser.new_context()
    page = await context.new_page()
    t_open = time.perf_counter()
    try:
        await page.goto(url, timeout=timeout_ms)
        box = page.get_by_test_id("stChatInputTextArea")
        await box.wait_for(timeout=timeout_ms)
        await box.fill(question)
        t_ask = time.perf_counter()
        await box.press("Enter")
        await page.locator(CHIP).first.wait_for(timeout=timeout_ms)
        t_chip = time.perf_counter()
        return {"ok": True, "ask_s": t_chip - t_ask, "open_s": t_chip - t_open}
    except Exception as e:  # a timeout or a crashed page: counted as lost, reported below
        try:
            seen = " ".join((await page.inner_text("body", timeout=5000)).split())[-300:]
        except Exception:
            seen = "(page unreadable)"
        return {"ok": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}; page ends: {seen}"}
    finally:
        await context.close()


async def ask_ws(port: int, question: str, timeout_s: float) -> dict:
    """One session over Streamlit's websocket: run the page, submit the question into its chat input,
    wait for the first citation chip (a button labelled "doc · para. N"), then for the run to finish."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    async def messages(ws):
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await ws.recv())
            yield msg

    def element(msg):
        if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element":
            return msg.delta.new_element
        return None

    async def session() -> dict:
        t_open = time.perf_counter()
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], max_size=None, ping_interval=None
        ) as ws:  # a browser sends no pings
            first = BackMsg()
            first.rerun_script.query_string = ""
            await ws.send(first.SerializeToString())
            chat_id = None
            async for msg in messages(ws):
                el = element(msg)
                if el is not None and el.WhichOneof("type") == "chat_input":
                    chat_id = el.chat_input.id
                if msg.WhichOneof("type") == "script_finished":
                    break
            if chat_id is None:
                return {"ok": False, "error": "the chat page drew no chat input"}
            ask = BackMsg()
            ask.rerun_script.query_string = ""
            widget = ask.rerun_script.widget_states.widgets.add()
            widget.id = chat_id
            widget.chat_input_value.data = question
            t_ask = time.perf_counter()
            await ws.send(ask.SerializeToString())
            t_chip = None
            async for msg in messages(ws):
                el = element(msg)
                if (
                    t_chip is None
                    and el is not None
                    and el.WhichOneof("type") == "button"
                    and "· para." in el.button.label
                ):
                    t_chip = time.perf_counter()
                if msg.WhichOneof("type") == "script_finished":
                    break
            if t_chip is None:
                return {"ok": False, "error": "the answer had no citation chip"}
            return {
                "ok": True,
                "ask_s": t_chip - t_ask,
                "open_s": t_chip - t_open,
                "done_s": time.perf_counter() - t_ask,
            }

    try:
        return await asyncio.wait_for(session(), timeout_s)
    except Exception as e:  # a timeout or a dropped connection: counted as lost, reported below
        return {"ok": False, "error": f"{type(e).__name__}: {str(e)[:200]}"}


async def upload(browser, url: str, files: list[Path], started: asyncio.Event, timeout_ms: int) -> dict:
    page = await browser.new_page()
    t0 = time.perf_counter()
    try:
        await page.goto(f"{url}/library", timeout=timeout_ms)
        await page.locator("input[type=file]").set_input_files([str(f) for f in files], timeout=timeout_ms)
        button = page.get_by_role("button", name="Add to library")
        await button.wait_for(timeout=timeout_ms)
        for _ in range(int(timeout_ms / 250)):  # the button enables once the files have streamed in
            if await button.is_enabled():
                break
            await asyncio.sleep(0.25)
        await button.click(timeout=timeout_ms)
        await page.get_by_text("Parsing", exact=False).first.wait_for(timeout=timeout_ms)
        started.set()
        t_ingest = time.perf_counter()
        await page.get_by_text("Added or updated", exact=False).first.wait_for(timeout=timeout_ms)
        done = time.perf_counter()
        return {"ok": True, "upload_s": t_ingest - t0, "ingest_s": done - t_ingest}
    except Exception as e:
        started.set()  # let the sessions run anyway; the upload is reported lost
        return {"ok": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    finally:
        await page.close()


async def run(
    url: str, port: int, sessions: int, docs: list[Path], session_timeout_s: float, driver: str
) -> tuple[dict, list[dict], dict]:
    from playwright.async_api import async_playwright

    timeout_ms = int(session_timeout_s * 1000)

    def one(question: str):
        if driver == "ws":
            return ask_ws(port, question, session_timeout_s)
        return ask_one(browser, url, question, timeout_ms)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            warm = await one(QUESTIONS[0])
            started = asyncio.Event()
            if docs:
                uploading = asyncio.create_task(upload(browser, url, docs, started, timeout_ms))
                await asyncio.wait_for(started.wait(), session_timeout_s)
            asks = [one(QUESTIONS[i % len(QUESTIONS)]) for i in range(sessions)]
            results = await asyncio.gather(*asks)
            upload_result = await uploading if docs else {"ok": True, "skipped": True}
        finally:
            await browser.close()
    return warm, list(results), upload_result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path, help="an index folder (copied; never written)")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument(
        "--upload-docs",
        type=int,
        default=12,
        help="generated documents uploaded meanwhile (0: no upload, for a baseline)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the whole run")
    parser.add_argument(
        "--driver",
        choices=["ws", "browser"],
        default="ws",
        help="sessions over Streamlit's websocket (default) or as Chromium pages",
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=180,
        help="seconds one session (or the upload) may wait for its answer before it counts as lost",
    )
    args = parser.parse_args()
    if not (args.index / "CURRENT").is_file():
        print(f"{args.index}: no index here (no CURRENT); build one with: rag ingest corpus/", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="paracite-load-"))
    index = work / "index"
    shutil.copytree(args.index, index)
    docs = make_docs(work / "uploads", args.upload_docs)
    (work / "backends.toml").write_text("")  # no LLM backends: every session answers extractively
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "RAG_INDEX": str(index),
        "RAG_CORPUS": str(work / "corpus"),
        "RAG_CONVERSATIONS": str(work / "conversations"),
        "RAG_BACKENDS": str(work / "backends.toml"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    log = (work / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "ui" / "main.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    t0 = time.perf_counter()
    try:
        wait_healthy(url, server)
        warm, results, uploaded = asyncio.run(
            asyncio.wait_for(
                run(url, port, args.sessions, docs, min(args.session_timeout, args.timeout / 3), args.driver),
                args.timeout,
            )
        )
    finally:
        stop_server(server, timeout=30)
    wall = time.perf_counter() - t0

    ok = [r for r in results if r["ok"]]
    print(f"sessions: {args.sessions} ({args.driver}), uploaded docs: {args.upload_docs}, wall {wall:.1f} s")
    warm_text = f"{warm['ask_s']:.2f} s" if warm["ok"] else "FAILED " + warm["error"]
    print(f"warm-up question: {warm_text}")
    if uploaded.get("skipped"):
        print("upload: none (--upload-docs 0)")
    elif uploaded["ok"]:
        print(f"upload: streamed in {uploaded['upload_s']:.1f} s, ingested in {uploaded['ingest_s']:.1f} s")
    else:
        print(f"upload: FAILED {uploaded['error']}")
    if ok:
        for key, label in (
            ("ask_s", "question → first chip"),
            ("open_s", "page open → first chip"),
            ("done_s", "question → answer drawn"),
        ):
            values = [r[key] for r in ok if key in r]
            if not values:
                continue
            print(
                f"{label:24} p50 {percentile(values, 0.5):6.2f} s   p95 {percentile(values, 0.95):6.2f} s   "
                f"max {max(values):6.2f} s   mean {statistics.mean(values):6.2f} s"
            )
    for r in results:
        if not r["ok"]:
            print(f"lost session: {r['error']}")

    doctor = subprocess.run(
        [sys.executable, "-m", "app.cli", "doctor", "--index", str(index)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    listed = subprocess.run(
        [sys.executable, "-m", "app.cli", "docs", "--json", "--index", str(index)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    ids = {json.loads(line)["doc_id"] for line in listed.stdout.splitlines() if line.strip()}
    missing = sorted(d.stem for d in docs if d.stem not in ids)
    checks = {
        "every session got a cited answer": len(ok) == args.sessions,
        "the upload finished": uploaded["ok"],
        "every uploaded document is in the index": not missing,
        "rag doctor: index healthy": doctor.returncode == 0,
    }
    for name, passed in checks.items():
        print(f"{'ok  ' if passed else 'FAIL'} {name}")
    if missing:
        print(f"     not in the index: {', '.join(missing)}")
    if doctor.returncode:
        print(doctor.stdout + doctor.stderr)
    log.close()
    if not all(checks.values()):
        print("server log (last 40 lines):")
        print("\n".join((work / "server.log").read_text(errors="replace").splitlines()[-40:]))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
