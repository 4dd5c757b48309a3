// ioredis's Cluster client against a redraft cluster started with --redirect moved
// (driven by tests/test_redirect_moved.py).
//
//   node cluster_client.js once  <port> <key> <value>
//       SET key value, then GET key: prints one JSON line {"set": ..., "get": ...}.
//   node cluster_client.js until <port> <key> <marker-file> <deadline-seconds>
//       SET key i / GET key over and over, errors counted and retried, until
//       three pairs succeeded after <marker-file> appeared (the test creates it
//       once it killed the leader): prints {"ok": n, "errors": n, "after": 3}
//       and exits 0; exits 1 at the deadline.  Creates <marker-file>.running
//       after its first pair, so that the test kills the leader mid-run.
//
// The client is given one node (a follower): it must find the leader itself
// from CLUSTER SLOTS and follow MOVED.
"use strict";

const fs = require("fs");
const { Cluster } = require("ioredis");

function connect(port) {
  return new Cluster([{ host: "127.0.0.1", port: Number(port) }], {
    // Short delays: a leader change takes an election (1-2 s) here, not minutes.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnMoved: 0,
    slotsRefreshTimeout: 1000,
    clusterRetryStrategy: () => 200,
    redisOptions: { connectTimeout: 1000, commandTimeout: 2000, maxRetriesPerRequest: 2 },
  });
}

async function once(port, key, value) {
  const c = connect(port);
  try {
    const set = await c.set(key, value);
    const get = await c.get(key);
    console.log(JSON.stringify({ set, get }));
  } finally {
    c.disconnect();
  }
}

async function until(port, key, marker, seconds) {
  const c = connect(port);
  c.on("error", () => {}); // connection errors while the leader is gone: retried below
  const deadline = Date.now() + Number(seconds) * 1000;
  let ok = 0;
  let errors = 0;
  let after = 0;
  let i = 0;
  try {
    while (after < 3) {
      if (Date.now() > deadline) {
        console.log(JSON.stringify({ ok, errors, after, timeout: true }));
        process.exitCode = 1;
        return;
      }
      const killed = fs.existsSync(marker);
      i += 1;
      try {
        await c.set(key, String(i));
        const got = await c.get(key);
        if (got !== String(i)) throw new Error(`read ${got} after writing ${i}`);
        ok += 1;
        if (ok === 1) fs.writeFileSync(`${marker}.running`, "");
        if (killed) after += 1;
      } catch (err) {
        errors += 1;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    console.log(JSON.stringify({ ok, errors, after }));
  } finally {
    c.disconnect();
  }
}

const [mode, ...rest] = process.argv.slice(2);
const run = mode === "once" ? once : mode === "until" ? until : null;
if (run === null) {
  console.error("usage: cluster_client.js once|until ...");
  process.exit(2);
}
run(...rest).catch((err) => {
  console.error(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
