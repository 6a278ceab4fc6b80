// Embedding shoal in any page: import the package, start a node that names its relay
// (`?relay=http://host:port`, default http://127.0.0.1:8080), share and download.
// Everything peers send is shown as text, never as HTML.

import init, { Node } from '@shoal/peer-wasm';

const $ = (id) => document.getElementById(id);
const relay = new URLSearchParams(location.search).get('relay') ?? 'http://127.0.0.1:8080';
const swarm = new URLSearchParams(location.search).get('swarm') ?? 'embed';
$('relay').textContent = relay;

try {
  await init();
  const node = await Node.start({ relay, swarm });
  window.shoal = node;
  $('me').textContent = node.peerId;
  node.onChange(() => {
    const d = node.downloads().at(-1);
    if (d) $('status').textContent = `${d.name}: ${d.state} ${d.bytesDone}/${d.bytesTotal} bytes`;
  });
  $('file').addEventListener('change', async (e) => {
    const file = e.target.files[0];
    if (file) $('link').textContent = await node.share(file);
  });
  $('get').addEventListener('click', async () => {
    const file = await node.download($('download').value.trim());
    $('status').textContent = `${file.name}: ${file.size} bytes, done`;
  });
} catch (e) {
  window.shoalError = String(e?.message ?? e);
  $('me').textContent = `could not start: ${window.shoalError}`;
}
