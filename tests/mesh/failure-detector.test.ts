import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapSamples, IntervalWindow, longestLearntIntervalMs, ServerDetector, phi, type Verdict } from '../../mesh/detection/failure-detector.ts';
import { defaultMeshConfig } from '../../mesh/base/config.ts';
import { serverId, type ServerId } from '../../mesh/base/types.ts';

/**
 * Upper tail Q(y) = P(Z > y) of the standard normal distribution, from printed tables. The phi of a
 * silence y standard deviations past the mean is -log10(Q(y)).
 */
const normalTail: [number, number][] = [
  [-2, 0.977250], [-1, 0.841345], [-0.5, 0.691462], [0, 0.5], [0.5, 0.308538], [1, 0.158655],
  [1.5, 0.066807], [2, 0.022750], [2.5, 0.006210], [3, 0.001350], [4, 0.0000317],
];

const config = defaultMeshConfig;
const interval = config.heartbeatIntervalMs;
const p1 = serverId('peer-1');
const p2 = serverId('peer-2');
const stranger = serverId('stranger');
const peersAre = (...ids: ServerId[]) => (id: ServerId) => ids.includes(id);
const noPeers = () => false;

/**
 * Independent reference for the timing tables: the exact normal tail Q(y) = erfc(y / sqrt 2) / 2
 * (erfc by the Numerical Recipes Chebyshev fit, relative error < 1.2e-7), and the number of
 * standard deviations past the mean at which -log10(Q) reaches a phi threshold (bisection).
 */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}
const tail = (y: number) => erfc(y / Math.SQRT2) / 2;
function sdsAtPhi(threshold: number): number {
  let lo = -10;
  let hi = 30;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (-Math.log10(tail(mid)) < threshold) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * The silence at which a detector with the given window deviation becomes suspect under the
 * default config: mean interval plus the acceptable pause, plus the threshold's number of
 * standard deviations (the window's, floored at phiMinStdDeviationMs). The detector uses a
 * logistic approximation of the tail, which moves the crossing by a few hundredths of a standard
 * deviation, so the tables probe `margin` ms either side of it.
 */
const crossingFor = (windowSd: number) =>
  interval + config.phiAcceptablePauseMs + sdsAtPhi(config.phiSuspectThreshold) * Math.max(windowSd, config.phiMinStdDeviationMs);
const margin = 25;

/**
 * A detector that has seen 150 heartbeats exactly one interval apart, more than its window holds,
 * so the bootstrap samples are gone and the window holds only samples of one interval:
 * mean = interval, standard deviation 0 (floored).
 */
const warmLast = (config.phiWindowSize + 50) * interval;
function warm(): ServerDetector {
  const detector = new ServerDetector(config, 0);
  for (let t = interval; t <= warmLast; t += interval) detector.heartbeat(t);
  return detector;
}
/** Silence at which a warm detector becomes suspect. */
const warmCrossing = Math.round(crossingFor(0));
const stateOf = (v: Verdict) => (v.state === 'failed' ? `failed:${v.reason}` : v.state);

describe('the default config and the reference tail agree with the issue', () => {
  test('the reference tail matches the printed table', () => {
    for (const [y, q] of normalTail) assert.ok(Math.abs(tail(y) - q) / q < 1e-3, `Q(${y}) = ${tail(y)}, table ${q}`);
  });

  test('a warm server becomes suspect after the heartbeat interval and before a second heartbeat is lost', () => {
    assert.ok(warmCrossing - margin > interval, `crossing ${warmCrossing}`);
    assert.ok(warmCrossing + margin < 2 * interval, `crossing ${warmCrossing}`);
  });
});

describe('phi()', () => {
  for (const [y, tail] of normalTail) {
    test(`a silence ${y} sd from the mean has phi = -log10(Q(${y})) to the documented 1e-3 in probability`, () => {
      for (const [mean, sd] of [[1000, 100], [1200, 250], [50, 5]] as const) {
        const value = phi(mean + y * sd, mean, sd);
        assert.ok(Math.abs(10 ** -value - tail) < 1e-3, `phi ${value} gives ${10 ** -value}, table says ${tail}`);
      }
    });
  }

  const relative: { name: string; silence: number; check: (v: number) => boolean }[] = [
    { name: 'at the mean, phi is log10(2) (even odds)', silence: 1000, check: (v) => Math.abs(v - Math.log10(2)) < 1e-12 },
    { name: 'below the mean, phi is below log10(2)', silence: 900, check: (v) => v > 0 && v < Math.log10(2) },
    { name: 'far below the mean, phi is near 0', silence: 0, check: (v) => v >= 0 && v < 1e-6 },
    { name: 'above the mean, phi is above log10(2)', silence: 1100, check: (v) => v > Math.log10(2) },
    { name: '6 sd above the mean, phi is above 8 (suspect)', silence: 1600, check: (v) => v > 8 },
    { name: 'far above the mean, phi grows without bound', silence: 10_000, check: (v) => v > 1000 },
  ];
  for (const { name, silence, check } of relative) {
    test(name, () => {
      const value = phi(silence, 1000, 100);
      assert.ok(check(value), `phi(${silence}, 1000, 100) = ${value}`);
    });
  }

  test('phi never decreases as the silence grows', () => {
    for (const [mean, sd] of [[1000, 100], [1200, 250], [1000, 1]] as const) {
      let previous = -Infinity;
      for (let silence = 0; silence <= 4000; silence += 5) {
        const value = phi(silence, mean, sd);
        assert.ok(value >= previous, `phi(${silence}) = ${value} < phi(${silence - 5}) = ${previous} (mean ${mean}, sd ${sd})`);
        assert.ok(!Number.isNaN(value), '!Number.isNaN(value)');
        previous = value;
      }
    }
  });

  test('above the mean, phi decreases as the standard deviation grows (less certain, less suspicious)', () => {
    for (const silence of [1050, 1300, 2000, 3000]) {
      let previous = Infinity;
      for (const sd of [10, 50, 100, 200, 400, 800, 1600]) {
        const value = phi(silence, 1000, sd);
        assert.ok(value < previous || (value === Infinity && previous === Infinity), `silence ${silence}: phi(sd ${sd}) = ${value} !< ${previous}`);
        previous = value;
      }
    }
  });

  test('below the mean, a wider spread moves phi up towards log10(2), never past it', () => {
    let previous = -Infinity;
    for (const sd of [10, 50, 100, 200, 400, 800, 1600]) {
      const value = phi(800, 1000, sd);
      assert.ok(value > previous && value < Math.log10(2), `phi(800, sd ${sd}) = ${value}`);
      previous = value;
    }
  });
});

describe('IntervalWindow', () => {
  const close = (actual: number, expected: number, what: string) =>
    assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} != ${expected}`);

  // Capacity 3; each row adds one sample and gives the window's content afterwards.
  const steps: [number, number[]][] = [
    [1, [1]], [2, [1, 2]], [3, [1, 2, 3]], [10, [2, 3, 10]], [20, [3, 10, 20]], [30, [10, 20, 30]], [30, [20, 30, 30]],
  ];
  const window = new IntervalWindow(3);
  for (const [sample, content] of steps) {
    test(`after adding ${sample}, the window holds ${content.join(', ')} (oldest evicted first)`, () => {
      window.add(sample);
      const mean = content.reduce((s, x) => s + x, 0) / content.length;
      const variance = content.reduce((s, x) => s + (x - mean) ** 2, 0) / content.length;
      assert.equal(window.size, content.length);
      close(window.mean(), mean, 'mean');
      close(window.stdDev(), Math.sqrt(variance), 'population standard deviation');
    });
  }

  test('identical samples have a standard deviation of exactly 0, never NaN from rounding', () => {
    const w = new IntervalWindow(100);
    for (let i = 0; i < 1000; i++) w.add(1000.1);
    assert.equal(w.stdDev(), 0);
    close(w.mean(), 1000.1, 'mean');
  });

  test('a long run of evictions keeps mean and deviation exact (no drift of the running sums)', () => {
    const w = new IntervalWindow(10);
    for (let i = 0; i < 100_000; i++) w.add(i % 2 === 0 ? 900 : 1100);
    for (let i = 0; i < 10; i++) w.add(1000 + i);
    const expected = Array.from({ length: 10 }, (_, i) => 1000 + i);
    const mean = expected.reduce((s, x) => s + x, 0) / 10;
    close(w.mean(), mean, 'mean');
    assert.ok(Math.abs(w.stdDev() - Math.sqrt(expected.reduce((s, x) => s + (x - mean) ** 2, 0) / 10)) < 1e-4, `stdDev ${w.stdDev()}`);
  });
});

describe('ServerDetector: phi of its own heartbeat stream', () => {
  const pause = config.phiAcceptablePauseMs;

  test('a fresh detector: mean one interval, sd phiMinStdDeviationMs (its bootstrap pair), plus the acceptable pause', () => {
    const detector = new ServerDetector(config, 5000);
    assert.equal(detector.lastHeartbeatAtMs, 5000, 'the start counts as a sighting');
    const sd = config.phiMinStdDeviationMs;
    assert.ok(Math.abs(10 ** -detector.phi(5000 + interval + pause + 2 * sd) - 0.022750) < 1e-3, 'Q(2)');
    assert.ok(Math.abs(detector.phi(5000 + interval + pause) - Math.log10(2)) < 1e-12, 'at the mean: log10(2)');
  });

  // The bootstrap spread is min(phiMinStdDeviationMs, interval / 4), so a new server is judged from
  // the start as a regular one is once its window is full: the same phi at every silence.
  for (const minSd of [config.phiMinStdDeviationMs, 400]) {
    test(`a fresh detector is judged like a warm, regular one (phiMinStdDeviationMs ${minSd})`, () => {
      const tuned = { ...config, phiMinStdDeviationMs: minSd };
      const fresh = new ServerDetector(tuned, 0);
      const regular = new ServerDetector(tuned, 0);
      for (let t = interval; t <= warmLast; t += interval) regular.heartbeat(t);
      for (let silence = 0; silence <= 4000; silence += 50) {
        const [a, b] = [fresh.phi(silence), regular.phi(warmLast + silence)];
        assert.ok(a === b || Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `silence ${silence}: ${a} vs ${b}`);
      }
    });
  }

  test('the first heartbeat is not an interval: the time since observation began is not learnt', () => {
    const heardLate = new ServerDetector(config, 0);
    heardLate.heartbeat(300); // 300 ms after registration: not a 300 ms inter-arrival time
    const untouched = new ServerDetector(config, 300);
    for (const silence of [500, 1200, 1500, 2500]) assert.equal(heardLate.phi(300 + silence), untouched.phi(300 + silence));
  });

  test('a heartbeat older than the last one (delivered out of order) does not move the last sighting back', () => {
    const detector = warm();
    detector.heartbeat(warmLast - 300);
    assert.equal(detector.lastHeartbeatAtMs, warmLast);
    assert.equal(detector.phi(warmLast + 1200), warm().phi(warmLast + 1200), 'no sample added');
  });
});

describe('ServerDetector.assess without peer reports (default config)', () => {
  const cases: [string, number, string][] = [
    ['at the last heartbeat', 0, 'alive'],
    ['at one interval, whatever phi says', interval, 'alive'],
    ['just before phi reaches the threshold', warmCrossing - margin, 'alive'],
    ['just after phi reaches the threshold', warmCrossing + margin, 'suspect'],
    ['one heartbeat lost (2 intervals)', 2 * interval, 'suspect'],
    ['3.5 intervals', 3.5 * interval, 'suspect'],
    ['1 ms before failureTimeoutMs', config.failureTimeoutMs - 1, 'suspect'],
    ['exactly failureTimeoutMs', config.failureTimeoutMs, 'failed:timeout'],
    ['a minute past failureTimeoutMs', config.failureTimeoutMs + 60_000, 'failed:timeout'],
  ];
  for (const [name, silence, expected] of cases) {
    test(`${name} (${silence} ms of silence): ${expected}`, () => {
      assert.equal(stateOf(warm().assess(warmLast + silence, noPeers)), expected);
    });
  }

  test('with a lead of one tick, a timeout that would expire before the next judgement is declared now', () => {
    const lead = 100;
    const verdictAt = (silence: number) => stateOf(warm().assess(warmLast + silence, noPeers, lead));
    assert.equal(verdictAt(config.failureTimeoutMs - lead - 1), 'suspect');
    assert.equal(verdictAt(config.failureTimeoutMs - lead), 'failed:timeout');
    assert.equal(verdictAt(config.failureTimeoutMs), 'failed:timeout');
  });

  test('a suspect verdict carries the phi that made it suspect', () => {
    const detector = warm();
    const verdict = detector.assess(warmLast + 2000, noPeers);
    assert.equal(verdict.state, 'suspect');
    assert.equal(verdict.state === 'suspect' && verdict.phi, detector.phi(warmLast + 2000));
    assert.ok(verdict.state === 'suspect' && verdict.phi >= config.phiSuspectThreshold, 'phi at or over the threshold');
  });
});

describe(`ServerDetector.assess with peer reports (default config, peerSilenceMs ${config.peerSilenceMs})`, () => {
  const L = warmLast;
  const PS = config.peerSilenceMs;
  const FT = config.failureTimeoutMs;
  const cases: {
    name: string;
    reports: { from: ServerId; at: number; silentFor: number }[];
    isPeer: (id: ServerId) => boolean;
    at: number;
    expect: string;
  }[] = [
    { name: 'a peer reporting a silence longer than peerSilenceMs confirms as soon as phi is suspect',
      reports: [{ from: p1, at: L + PS + 100, silentFor: PS + 100 }], isPeer: peersAre(p1), at: L + warmCrossing + margin, expect: 'failed:peer_confirmed' },
    { name: 'the same report does not fail a server whose phi is still low (confirmation needs suspicion)',
      reports: [{ from: p1, at: L + PS + 100, silentFor: PS + 100 }], isPeer: peersAre(p1), at: L + warmCrossing - margin, expect: 'alive' },
    { name: 'a report arriving exactly peerSilenceMs after the last sighting confirms',
      reports: [{ from: p1, at: L + 1000, silentFor: PS }], isPeer: peersAre(p1), at: L + 2000, expect: 'failed:peer_confirmed' },
    { name: 'a report arriving 1 ms short of peerSilenceMs after the peer last heard it does not',
      reports: [{ from: p1, at: L + 1000, silentFor: PS - 1 }], isPeer: peersAre(p1), at: L + 2000, expect: 'suspect' },
    { name: 'a peer that has not heard it for long, but reports less than peerSilenceMs after our last heartbeat, does not',
      reports: [{ from: p1, at: L + PS - 100, silentFor: 10_000 }], isPeer: peersAre(p1), at: L + 2000, expect: 'suspect' },
    { name: 'the same peer reporting peerSilenceMs after our last heartbeat does',
      reports: [{ from: p1, at: L + PS, silentFor: 10_000 }], isPeer: peersAre(p1), at: L + 2000, expect: 'failed:peer_confirmed' },
    { name: 'a report from a server that is not a peer is ignored (no confirmation)',
      reports: [{ from: stranger, at: L + 1000, silentFor: 900 }], isPeer: peersAre(p1), at: L + 2000, expect: 'suspect' },
    { name: 'a non-peer saying it heard the server recently does not keep it from timing out',
      reports: [{ from: stranger, at: L + FT - 100, silentFor: 0 }], isPeer: peersAre(p1), at: L + FT, expect: 'failed:timeout' },
    { name: 'a peer that still hears it outweighs a peer that does not',
      reports: [{ from: p1, at: L + 2000, silentFor: 10 }, { from: p2, at: L + 2000, silentFor: 1900 }],
      isPeer: peersAre(p1, p2), at: L + 2000, expect: 'suspect' },
    { name: 'a later report of a full silence window after the freshest sighting confirms',
      reports: [{ from: p1, at: L + 2000, silentFor: 10 }, { from: p2, at: L + 2000 + PS + 100, silentFor: 2500 }],
      isPeer: peersAre(p1, p2), at: L + 2000 + PS + 100, expect: 'failed:peer_confirmed' },
    { name: 'a peer sighting pushes the timeout back: 1 ms short of failureTimeoutMs after it, still suspect',
      reports: [{ from: p1, at: L + 3000, silentFor: 0 }], isPeer: peersAre(p1), at: L + 3000 + FT - 1, expect: 'suspect' },
    { name: 'the timeout then runs from the peer sighting, not from the last heartbeat',
      reports: [{ from: p1, at: L + 3000, silentFor: 0 }], isPeer: peersAre(p1), at: L + 3000 + FT, expect: 'failed:timeout' },
    { name: 'a negative silence counts as 0 (a peer cannot hear the server in the future)',
      reports: [{ from: p1, at: L + 1000, silentFor: -500 }], isPeer: peersAre(p1), at: L + 1000 + FT, expect: 'failed:timeout' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const detector = warm();
      for (const r of c.reports) detector.peerReport(r.from, r.silentFor, r.at);
      assert.equal(stateOf(detector.assess(c.at, c.isPeer)), c.expect);
    });
  }

  test('link-only loss: while a peer keeps hearing the server it is never failed, long past the timeout', () => {
    const detector = warm();
    let lastReport = L;
    for (let t = L + 2000; t <= L + 60_000; t += 1000) {
      detector.peerReport(p1, 20, t);
      lastReport = t;
      for (const offset of [0, 500, 999]) {
        const verdict = detector.assess(t + offset, peersAre(p1));
        assert.equal(verdict.state, 'suspect', `at +${t + offset - L} ms of coordinator silence: ${stateOf(verdict)}`);
      }
    }
    // When the peer stops affirming, the timeout runs from its last sighting (20 ms before its report).
    const lastSighting = lastReport - 20;
    assert.equal(detector.assess(lastSighting + config.failureTimeoutMs - 1, peersAre(p1)).state, 'suspect');
    assert.equal(stateOf(detector.assess(lastSighting + config.failureTimeoutMs, peersAre(p1))), 'failed:timeout');
  });

  test('a peer that stops being a peer no longer counts, even for reports it made while it was one', () => {
    const detector = warm();
    detector.peerReport(p1, 600, L + 600);
    assert.equal(stateOf(detector.assess(L + 2000, peersAre(p1))), 'failed:peer_confirmed');
    assert.equal(stateOf(detector.assess(L + 2000, noPeers)), 'suspect');
  });

  test('forgetPeer drops that peer\'s report', () => {
    const detector = warm();
    detector.peerReport(p1, 600, L + 600);
    detector.forgetPeer(p1);
    assert.equal(stateOf(detector.assess(L + 2000, peersAre(p1))), 'suspect');
  });

  test('a heartbeat clears the peer reports gathered before it', () => {
    const detector = warm();
    detector.peerReport(p1, 600, L + 600);
    detector.heartbeat(L + 800);
    assert.equal(stateOf(detector.assess(L + 800 + 2000, peersAre(p1))), 'suspect');
  });

  test('a report from before a heartbeat does not count after it, and a fresh one from the same peer does', () => {
    const detector = warm();
    detector.peerReport(p1, 600, L + 600);
    detector.heartbeat(L + 800);
    detector.peerReport(p1, 600, L + 800 + 1400);
    assert.equal(stateOf(detector.assess(L + 800 + 2000, peersAre(p1))), 'failed:peer_confirmed');
  });

  test('reports of peers that stopped reporting are swept out: the held reports stay about the current peer set', () => {
    const detector = warm();
    // Two peers at a time, and a new pair every heartbeat (replicas moving on), for 200 heartbeats.
    let t = L;
    for (let round = 0; round < 200; round++) {
      t += 1000;
      detector.heartbeat(t);
      detector.peerReport(serverId(`moving-${round}-a`), 20, t + 500);
      detector.peerReport(serverId(`moving-${round}-b`), 20, t + 500);
    }
    assert.ok(detector.peerReportCount <= 2 * 2 + 8 + 2, `${detector.peerReportCount} reports held`);
    // The latest pair still counts.
    const latest = [serverId('moving-199-a'), serverId('moving-199-b')];
    assert.equal(stateOf(detector.assess(t + 500 + 1200, peersAre(...latest))), 'suspect');
    detector.peerReport(latest[0] as ServerId, 700, t + 500 + 1200);
    assert.equal(stateOf(detector.assess(t + 500 + 1200, peersAre(...latest))), 'failed:peer_confirmed');
  });

  test('a newer report from the same peer replaces its older one', () => {
    const detector = warm();
    detector.peerReport(p1, 600, L + 600); // would confirm
    detector.peerReport(p1, 0, L + 1900); // it hears the server again
    assert.equal(stateOf(detector.assess(L + 2000, peersAre(p1))), 'suspect');
  });
});

describe('ServerDetector: outages are left out of the interval window', () => {
  // Twin warm detectors: A gets a regular heartbeat, B one after a gap. After the gap they are
  // compared at the same silence since their own last heartbeat.
  const longest = longestLearntIntervalMs(config);
  test('the longest learnt interval is one lost heartbeat plus the acceptable pause (2,100 ms by default)', () => {
    assert.equal(longest, 2 * interval + config.phiAcceptablePauseMs);
    assert.equal(longest, 2100);
  });
  const gaps: [number, boolean][] = [
    [1000, false], [2 * interval, true], [longest, true], [longest + 1, false], [3000, false],
    [config.failureTimeoutMs - 1, false], [60_000, false],
  ];
  for (const [gap, changesWindow] of gaps) {
    test(`a gap of ${gap} ms ${changesWindow ? 'enters' : 'does not enter'} the window`, () => {
      const regular = warm();
      const gapped = warm();
      regular.heartbeat(warmLast + interval);
      gapped.heartbeat(warmLast + gap);
      const silence = 1500;
      const a = regular.phi(warmLast + interval + silence);
      const b = gapped.phi(warmLast + gap + silence);
      if (changesWindow) assert.ok(b < a, `the ${gap} ms sample should widen the window and lower phi (${b} vs ${a})`);
      else assert.equal(b, a);
    });
  }

  test('a young window is not blunted by a gap of two lost heartbeats: the next silence is suspect as soon as without it', () => {
    // Three regular heartbeats after registration, then a 2.6 s gap, then one more regular one:
    // learnt, the gap would raise the suspicion time of the next silence by more than a second.
    const young = new ServerDetector(config, 0);
    const reference = new ServerDetector(config, 0);
    for (const t of [1000, 2000, 3000]) { young.heartbeat(t); reference.heartbeat(t); }
    young.heartbeat(5600);
    young.heartbeat(6600);
    reference.heartbeat(4000);
    assert.equal(young.phi(6600 + 1500), reference.phi(4000 + 1500));
    assert.ok(young.phi(6600 + 1500) >= config.phiSuspectThreshold, 'suspect 1.5 s after the last heartbeat');
  });

  test(`a young window weighs its first lost heartbeat against ${bootstrapSamples} bootstrap samples: suspect after 2.1 s of silence, not 2.4 s`, () => {
    // Window: the bootstrap, then 1000, 1000, 2000 (one lost heartbeat) and 1000 ms. With Akka's
    // single bootstrap pair its deviation would be 377 ms and suspicion would come after 2.43 s.
    const young = new ServerDetector(config, 0);
    for (const t of [1000, 2000, 4000, 5000]) young.heartbeat(t);
    assert.ok(young.phi(5000 + 2100) >= config.phiSuspectThreshold, `phi ${young.phi(5000 + 2100)} at 2.1 s`);
    assert.ok(young.phi(5000 + 1900) < config.phiSuspectThreshold, `phi ${young.phi(5000 + 1900)} at 1.9 s`);
  });

  test('after a 30 s outage, one lost heartbeat is still suspect at 2 s of silence', () => {
    const detector = warm();
    const back = warmLast + 30_000;
    detector.heartbeat(back);
    for (let t = back + interval; t <= back + 3 * interval; t += interval) detector.heartbeat(t);
    assert.equal(detector.assess(back + 3 * interval + 2000, noPeers).state, 'suspect');
  });
});

describe('ServerDetector.restart', () => {
  test('restart gives a full detection window from the restart instant', () => {
    const detector = warm();
    const restartAt = warmLast + 10_000;
    assert.equal(stateOf(detector.assess(restartAt, noPeers)), 'failed:timeout');
    detector.restart(restartAt);
    assert.equal(detector.lastHeartbeatAtMs, restartAt);
    const cases: [number, string][] = [
      [0, 'alive'], [interval, 'alive'], [2000, 'suspect'], [config.failureTimeoutMs - 1, 'suspect'],
      [config.failureTimeoutMs, 'failed:timeout'],
    ];
    for (const [offset, expected] of cases) {
      assert.equal(stateOf(detector.assess(restartAt + offset, noPeers)), expected, `+${offset} ms after restart`);
    }
  });

  test('after a restart, a peer report made before it no longer confirms', () => {
    const detector = warm();
    detector.peerReport(p1, 600, warmLast + 600);
    const restartAt = warmLast + 3000;
    assert.equal(stateOf(detector.assess(restartAt, peersAre(p1))), 'failed:peer_confirmed');
    detector.restart(restartAt);
    assert.equal(stateOf(detector.assess(restartAt + 2000, peersAre(p1))), 'suspect');
  });

  test('the first heartbeat after a restart is not an interval either (neither the outage nor the time since restart)', () => {
    const detector = warm();
    detector.restart(warmLast + 4000);
    detector.heartbeat(warmLast + 4300);
    const reference = warm();
    reference.heartbeat(warmLast + interval); // one more regular sample: the window is unchanged
    assert.equal(detector.phi(warmLast + 4300 + 1500), reference.phi(warmLast + interval + 1500));
  });
});
