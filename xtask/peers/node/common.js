// The JSON line format every bench driver prints (see crates/zd-bench/README.md).
'use strict';

function summary(samples) {
  const sorted = Float64Array.from(samples).sort();
  const rank = (pct) => {
    if (sorted.length === 0) return 0;
    const index = Math.max(1, Math.ceil((sorted.length * pct) / 100)) - 1;
    return Math.round(sorted[Math.min(index, sorted.length - 1)]);
  };
  return {
    p50_us: rank(50),
    p99_us: rank(99),
    max_us: sorted.length ? Math.round(sorted[sorted.length - 1]) : 0,
    samples: sorted.length,
  };
}

function emit(value) {
  process.stdout.write(JSON.stringify(value) + '\n');
}

function ready() {
  emit({ event: 'ready', client: 'peer' });
}

function phase(name, ops, errors, elapsedS, samples, firstError) {
  const p = { name, ops, errors, elapsed_s: elapsedS, ...summary(samples) };
  if (firstError) p.first_error = String(firstError);
  return p;
}

function done(phases, extra) {
  emit({ event: 'done', client: 'peer', phases, extra: extra ?? null });
}

function unixMicros() {
  return (performance.timeOrigin + performance.now()) * 1000;
}

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}

module.exports = { ready, phase, done, unixMicros, args };
