// Captures what hot-shots writes in telegraf mode, as test fixtures for
// TestEndToEndHotShotsTelegraf. Not run by the tests; to refresh the fixtures:
//
//	cd "$(mktemp -d)" && npm install hot-shots@17 && \
//	  node /path/to/cmd/libratod/testdata/hotshots-capture.js /path/to/cmd/libratod/testdata
//
// It listens on a loopback UDP port, sends the same stats twice (one line a
// datagram, then buffered with maxBufferSize: lines joined by "\n" without a
// final newline) and writes each datagram as received.
'use strict';
const dgram = require('dgram');
const fs = require('fs');
const path = require('path');
const StatsD = require(require.resolve('hot-shots', { paths: [process.cwd()] }));

const out = process.argv[2] || '.';
const version = require(require.resolve('hot-shots/package.json', { paths: [process.cwd()] })).version;

function send(client) {
  client.increment('requests', 3, { env: 'test', service: 'web', code: '200' });
  client.increment('requests', 2, { code: '200', env: 'test', service: 'web' }); // another tag order
  client.increment('requests', 1, { env: 'test', service: 'web', code: '500' });
  client.decrement('requests', 1, { env: 'test', service: 'web', code: '500' });
  client.increment('flags', 1, ['canary', 'region:eu']); // a bare tag
  client.timing('latency', 12.5);
  client.timing('latency', 30, { route: '/users' });
  client.timing('latency', 7.25, { route: '/users' });
  client.histogram('payload', 512, { env: 'test' });
  client.histogram('payload', 1024, { env: 'test' });
  client.distribution('render', 3.5, { env: 'test' });
  client.distribution('render', 4.5, { env: 'test' });
  client.gauge('queue', 7, { env: 'test' });
  client.gauge('queue', 9, { env: 'test' });
  client.set('users', 'user-0', { env: 'test' });
  client.set('users', 'user-1', { env: 'test' });
  client.set('users', 'user-0', { env: 'test' });
  client.unique('users', 'user-2', { env: 'prod' });
}

const server = dgram.createSocket('udp4');
const got = [];
server.on('message', (msg) => got.push(msg));
server.bind(0, '127.0.0.1', () => {
  const port = server.address().port;
  const common = { host: '127.0.0.1', port, telegraf: true, prefix: 'rcn.', globalTags: { app: 'rcnode' } };
  const plain = new StatsD(common);
  send(plain);
  plain.close(() => {
    setTimeout(() => {
      const lines = got.splice(0);
      const buffered = new StatsD({ ...common, maxBufferSize: 8192, bufferFlushInterval: 60000 });
      send(buffered);
      buffered.close(() => {
        setTimeout(() => {
          server.close();
          const header = `# hot-shots ${version}, telegraf: true, prefix "rcn.", globalTags {app: "rcnode"}: one datagram a line\n`;
          fs.writeFileSync(path.join(out, 'hotshots-telegraf.txt'), header + lines.map(String).join('\n') + '\n');
          if (got.length !== 1) {
            throw new Error(`buffered: ${got.length} datagrams, want 1`);
          }
          fs.writeFileSync(path.join(out, 'hotshots-telegraf-buffered.dgram'), got[0]);
          console.log(`${lines.length} datagrams, then one of ${got[0].length} bytes`);
        }, 200);
      });
    }, 200);
  });
});
