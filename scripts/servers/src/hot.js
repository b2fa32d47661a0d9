// hot.js: gets a few functions optimized by V8 (TurboFan), then serves
// HTTP on 127.0.0.1:PORT and idles. Prints "ready" when listening.
'use strict';
const http = require('http');

function mix(x) {
  x ^= x << 13;
  x ^= x >>> 7;
  x ^= x << 17;
  return x | 0;
}

function poly(x) {
  let s = 0;
  for (let i = 0; i < 16; i++) s = s * x + i;
  return s;
}

let acc = 1;
let d = 0;
for (let r = 0; r < 200; r++) {
  for (let i = 0; i < 100000; i++) {
    acc = mix(acc + i);
    d += poly((i & 1023) / 1024);
  }
}

const port = Number(process.argv[2] || 18080);
const server = http.createServer((req, res) => {
  res.setHeader('Connection', 'close');
  res.end(`acc=${acc} d=${d}\n`);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`ready ${acc} ${d}`);
});
