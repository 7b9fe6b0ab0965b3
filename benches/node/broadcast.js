// The Node baseline for fan-out: a minimal WebSocket broadcast server on npm's `ws`, speaking
// exactly what `tablecast loadgen raw-server` (src/loadgen/raw.rs) speaks, so that
// `tablecast loadgen fanout --node-baseline benches/node/broadcast.js` measures it with the same
// client: it listens on 127.0.0.1 on a free port and prints `node ws server on 127.0.0.1:PORT`;
// every socket (any path) first gets the text frame {"type":"ready"}; every text frame any client
// sends is written to every open socket, the sender's included. `ws`'s own broadcast idiom, no
// compression. Install its one dependency first: `npm ci --prefix benches/node`.
'use strict';

let ws;
try {
  ws = require('ws');
} catch (e) {
  console.error(`cannot load the npm package ws (${e.code || e.message}): run \`npm ci --prefix benches/node\``);
  process.exit(2);
}

const READY = '{"type":"ready"}';

const wss = new ws.WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });

wss.on('listening', () => {
  const { address, port } = wss.address();
  console.log(`node ws server on ${address}:${port}`);
});

wss.on('connection', (socket) => {
  socket.on('error', () => {});
  socket.send(READY);
  socket.on('message', (data, isBinary) => {
    if (isBinary) return;
    for (const client of wss.clients) {
      if (client.readyState === ws.WebSocket.OPEN) client.send(data, { binary: false });
    }
  });
});

wss.on('error', (e) => {
  console.error(`node ws server: ${e.message}`);
  process.exit(1);
});
