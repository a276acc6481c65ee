"""``coherence lsp`` driven by a client over stdio: JSON-RPC with Content-Length framing."""

from __future__ import annotations

import io
import json
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coherence.cli import main

ROOT = Path(__file__).resolve().parent.parent
TIPPING = (ROOT / "specs" / "seed" / "tipping_point.coh").read_text(encoding="utf-8")
BROKEN = TIPPING.replace("tick 1s", "tick 1q")  # COH207 and COH208 at 9:8
TIMEOUT = 60.0  # the safety net only: every wait ends as soon as the message arrives

Message = dict[str, Any]


class Client:
    """A minimal LSP client: frames messages, matches responses to requests by id."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coherence", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )
        self.inbox: queue.Queue[Message | None] = queue.Queue()
        self.pending: list[Message] = []
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        stream = self.proc.stdout
        while True:
            headers: dict[str, str] = {}
            while True:
                line = stream.readline()
                if not line:
                    self.inbox.put(None)
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.decode("ascii").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = stream.read(int(headers["content-length"]))
            self.inbox.put(json.loads(body))

    def send(self, message: Message) -> None:
        assert self.proc.stdin is not None
        data = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        self.proc.stdin.flush()

    def notify(self, method: str, params: Any) -> None:
        self.send({"method": method, "params": params})

    def wait(self, match: Callable[[Message], bool]) -> Message:
        for i, m in enumerate(self.pending):
            if match(m):
                return self.pending.pop(i)
        while True:
            try:
                m = self.inbox.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no answer in {TIMEOUT}s; got {self.pending}") from None
            if m is None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise AssertionError(f"the server exited: {err}")
            if match(m):
                return m
            self.pending.append(m)

    def request(self, method: str, params: Any) -> Any:
        self.next_id += 1
        rid = self.next_id
        self.send({"id": rid, "method": method, "params": params})
        answer = self.wait(lambda m: m.get("id") == rid and "method" not in m)
        assert "error" not in answer, answer
        return answer.get("result")

    def diagnostics(self, uri: str) -> list[Message]:
        m = self.wait(
            lambda m: (
                m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
            )
        )
        return list(m["params"]["diagnostics"])


@pytest.fixture
def client(tmp_path: Path) -> Any:
    c = Client(tmp_path)
    c.request(
        "initialize",
        {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}},
    )
    c.notify("initialized", {})
    yield c
    if c.proc.poll() is None:
        c.proc.kill()
        c.proc.wait(timeout=TIMEOUT)


def lint_codes(path: Path) -> list[tuple[str, int, int]]:
    out = io.StringIO()
    main(["lint", str(path), "--format", "json", "--isolated"], out, io.StringIO())
    doc = json.loads(out.getvalue())
    return sorted(
        (d["code"], d["location"]["line"], d["location"]["column"])
        for f in doc["files"]
        for d in f["diagnostics"]
    )


def position(text: str, needle: str, line_hint: str, offset: int = 1) -> dict[str, int]:
    """The LSP position (0-based) ``offset`` characters into ``needle`` on the first line
    that contains ``line_hint``."""
    for i, line in enumerate(text.splitlines()):
        if line_hint in line:
            word = re.compile(rf"\b{re.escape(needle)}\b")
            found = word.search(line, line.index(line_hint))
            assert found is not None, (needle, line)
            return {"line": i, "character": found.start() + offset}
    raise AssertionError(line_hint)


def test_diagnostics_hover_definition_and_exit(client: Client, tmp_path: Path) -> None:
    spec = tmp_path / "fleet.coh"
    spec.write_text(BROKEN, encoding="utf-8")
    uri = spec.as_uri()
    doc = {"uri": uri, "languageId": "coherence", "version": 1, "text": BROKEN}
    client.notify("textDocument/didOpen", {"textDocument": doc})
    published = client.diagnostics(uri)

    # the same diagnostics as `coherence lint` on the same text, at the same places
    got = sorted(
        (d["code"], d["range"]["start"]["line"] + 1, d["range"]["start"]["character"] + 1)
        for d in published
    )
    assert got == lint_codes(spec) == [("COH207", 9, 8), ("COH208", 9, 8)]
    (unknown,) = [d for d in published if d["code"] == "COH208"]
    assert unknown["range"] == {
        "start": {"line": 8, "character": 7},
        "end": {"line": 8, "character": 9},
    }
    assert unknown["severity"] == 1 and unknown["source"] == "coherence"
    assert "unknown unit `q`" in unknown["message"] and "help: declare it" in unknown["message"]

    # a change that fixes it clears them
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": TIPPING}]},
    )
    assert client.diagnostics(uri) == []

    # hover on a use of `latency` (in the router's law): its declaration and its unit
    at = position(TIPPING, "latency", "actuates slow_share by", offset=2)
    hover = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": at})
    text = hover["contents"]["value"]
    assert "let latency  = 0.5s + queue / capacity" in text
    assert "**let** `latency`" in text and "unit: `s`" in text

    # go to definition: the name in its declaration
    at = position(TIPPING, "slo", "actuates slow_share by", offset=1)
    loc = client.request("textDocument/definition", {"textDocument": {"uri": uri}, "position": at})
    decl_line = next(i for i, s in enumerate(TIPPING.splitlines()) if "param slo " in s)
    col = TIPPING.splitlines()[decl_line].index("slo")
    assert loc == {
        "uri": uri,
        "range": {
            "start": {"line": decl_line, "character": col},
            "end": {"line": decl_line, "character": col + 3},
        },
    }
    at = position(TIPPING, "router", "loop router", offset=0)
    hover = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": at})
    assert "**loop** `router`" in hover["contents"]["value"]

    # nothing is declared under a keyword
    at = position(TIPPING, "actuates", "actuates slow_share by", offset=1)
    assert (
        client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": at}) is None
    )

    assert client.request("shutdown", None) is None
    client.notify("exit", None)
    assert client.proc.wait(timeout=TIMEOUT) == 0


def test_the_project_configuration_applies(client: Client, tmp_path: Path) -> None:
    # as for `coherence lint`: the configuration found from the file's directory up
    (tmp_path / "coherence.toml").write_text('ignore = ["COH208"]\n', encoding="utf-8")
    uri = (tmp_path / "specs" / "fleet.coh").as_uri()
    doc = {"uri": uri, "languageId": "coherence", "version": 1, "text": BROKEN}
    client.notify("textDocument/didOpen", {"textDocument": doc})
    assert [d["code"] for d in client.diagnostics(uri)] == ["COH207"]


def test_the_vscode_extension_wires_the_grammar_to_the_server() -> None:
    editors = ROOT / "dsl" / "editors"
    grammar = json.loads((editors / "coherence.tmLanguage.json").read_text(encoding="utf-8"))
    package = json.loads((editors / "vscode" / "package.json").read_text(encoding="utf-8"))
    (language,) = package["contributes"]["languages"]
    (wired,) = package["contributes"]["grammars"]
    assert language["extensions"] == [".coh"] and wired["language"] == language["id"]
    assert wired["scopeName"] == grammar["scopeName"] == "source.coherence"
    assert wired["path"] == "./coherence.tmLanguage.json"  # copied next to it (docs/editors.md)
    command = package["contributes"]["configuration"]["properties"]["coherence.server.command"]
    assert command["default"] == ["coherence", "lsp"]
    assert f"onLanguage:{language['id']}" in package["activationEvents"]
    assert "vscode-languageclient/node" in (editors / "vscode" / "extension.js").read_text()
    docs = (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")
    for snippet in ('cmd = { "coherence", "lsp" }', 'args = ["lsp"]', "coherence completion bash"):
        assert snippet in docs


def test_declarations_name_loop_objectives_as_the_reports_do() -> None:
    from coherence.lsp.document import compile_document, declaration_at, declarations

    result = compile_document("tipping_point.coh", TIPPING)
    objectives = {d.name: d.unit for d in declarations(result) if d.kind == "objective"}
    assert objectives == {
        "cost_controller.cost": "$/h",
        "agent_retries.success": "1",
        "router.latency": "s",
    }
    # a dotted name resolves by the part under the cursor when the whole is not declared
    line = next(i for i, s in enumerate(TIPPING.splitlines(), 1) if "let latency" in s)
    decl = declaration_at(result, line, TIPPING.splitlines()[line - 1].index("latency") + 1)
    assert decl is not None and (decl.kind, decl.name, decl.unit) == ("let", "latency", "s")
