// Starts `coherence lsp` for .coh files: lint's diagnostics, hover, go to definition.
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace
    .getConfiguration("coherence")
    .get("server.command", ["coherence", "lsp"]);
  client = new LanguageClient(
    "coherence",
    "coherence",
    { command, args, transport: TransportKind.stdio },
    { documentSelector: [{ scheme: "file", language: "coherence" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
