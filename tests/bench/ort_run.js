// Runs the cases that bench_graph prepared through ONNX Runtime (CPU): for each case in
// DIR/cases.json, one warm-up run, then RUNS timed runs; writes the output of the last run to
// DIR/ort/NAME.out.bin and every run's milliseconds to DIR/ort/timings.json.
// Usage: node ort_run.js DIR RUNS   (onnxruntime-node resolved from NODE_PATH)
// ORT_THREADS=N sets ONNX Runtime's intra-op threads (default: its own choice, one per core), e.g. to
// match SMELT_THREADS when both run pinned to a subset of a larger machine's cores.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const [dir, runsArg] = process.argv.slice(2);
  const runs = parseInt(runsArg, 10);
  const cases = JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8'));
  fs.mkdirSync(path.join(dir, 'ort'), { recursive: true });
  const timings = {};
  const sessions = {};
  const opts = { executionMode: 'sequential' };
  const threads = parseInt(process.env.ORT_THREADS || '0', 10);
  if (threads > 0) opts.intraOpNumThreads = threads;
  for (const c of cases) {
    if (!sessions[c.model]) sessions[c.model] = await ort.InferenceSession.create(c.model, opts);
    const s = sessions[c.model];
    const raw = fs.readFileSync(path.join(dir, c.name + '.in.bin'));
    const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
    const data = c.dtype === 'int64' ? new BigInt64Array(buf) : new Float32Array(buf);
    const feeds = { [c.input]: new ort.Tensor(c.dtype, data, c.shape) };
    let out = await s.run(feeds);
    const ms = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      out = await s.run(feeds);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    timings[c.name] = ms;
    const o = out[c.output].data;
    fs.writeFileSync(path.join(dir, 'ort', c.name + '.out.bin'), Buffer.from(o.buffer, o.byteOffset, o.byteLength));
  }
  fs.writeFileSync(path.join(dir, 'ort', 'timings.json'), JSON.stringify(timings));
}
main().catch((e) => { console.error('ort_run: ' + e.message); process.exit(1); });
