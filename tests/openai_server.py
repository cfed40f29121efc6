"""A minimal OpenAI-compatible HTTP server (POST /v1/chat/completions, plain and streamed) over any
LangChain chat model, for testing the `openai:` backend over real HTTP without external services.

It serves the same local SmolLM2 model the `local` backend runs in-process. Only what
langchain-openai sends is read: model, messages, stream.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(chat_model, host: str = "127.0.0.1") -> tuple[ThreadingHTTPServer, list[dict]]:
    """Start serving on a free port in a daemon thread; returns the server and the list of requests seen."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output quiet
            pass

        def do_POST(self):
            if self.path.rstrip("/") != "/v1/chat/completions":
                self.send_error(404)
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            seen.append({"body": body, "authorization": self.headers.get("Authorization", "")})
            messages = [
                (m["role"].replace("user", "human").replace("assistant", "ai"), m["content"]) for m in body["messages"]
            ]
            base = {"id": "chatcmpl-test", "created": int(time.time()), "model": body.get("model", "local")}
            if body.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for chunk in chat_model.stream(messages):
                    self._event(
                        {
                            **base,
                            "object": "chat.completion.chunk",
                            "choices": [{"index": 0, "delta": {"content": chunk.content}, "finish_reason": None}],
                        }
                    )
                self._event(
                    {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    }
                )
                self.wfile.write(b"data: [DONE]\n\n")
                return
            text = chat_model.invoke(messages).content
            payload = json.dumps(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _event(self, data: dict) -> None:
            self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

    server = ThreadingHTTPServer((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen
