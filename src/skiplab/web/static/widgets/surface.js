// Loss surfaces drawn on a canvas: a filled contour map (log-scaled colour, isolines by marching squares) and
// a 3-D surface (a fixed oblique projection, quads painted back to front). The vendored plotly.js is its basic
// bundle (no contour, heatmap or 3-D traces), and these are small enough to draw here. Rows not yet computed
// are null and left blank, so a plane fills in as its rows stream in. Nothing here computes a number shown as
// a result: it maps the server's losses to pixels.

export const LOG_LO = -3; // colour scale: loss 0.001 ...
export const LOG_HI = 3; // ... to 1000, log-spaced; beyond, the end colours
export const LEVELS = [-3, -2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3].map((e) => 10 ** e); // isolines
export const SURFACE_CLIP = 10; // the 3-D height is the loss cut at 10, as Li et al.'s surface plots cut it

// viridis, sampled: dark (low loss) to yellow (high)
const STOPS = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

export function colour(loss) {
  const t = Math.min(1, Math.max(0, (Math.log10(Math.max(loss, 1e-12)) - LOG_LO) / (LOG_HI - LOG_LO)));
  const x = t * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return STOPS[i].map((c, k) => Math.round(c + f * (STOPS[i + 1][k] - c)));
}

const rgb = (c, a = 1) => `rgba(${c[0]},${c[1]},${c[2]},${a})`;

// Size the canvas's backing store to its CSS box (sharp on high-density screens); returns [ctx, width, height].
function prepare(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300;
  const hgt = canvas.clientHeight || w;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(hgt * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(hgt * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  ctx.font = "11px system-ui, sans-serif";
  return [ctx, w, hgt];
}

const known = (v) => v !== null && v !== undefined && Number.isFinite(v);

// Where the isoline of `level` crosses the cell's edges (marching squares on log10 loss, linear along edges).
function cellSegments(corners, level) {
  const [a, b, c, d] = corners.map((p) => Math.log10(Math.max(p.v, 1e-12))); // a: (i,j) b: (i+1,j) c: (i+1,j+1) d: (i,j+1)
  const L = Math.log10(level);
  const P = corners;
  const cut = (p, q, vp, vq) => {
    const t = (L - vp) / (vq - vp);
    return [p.x + t * (q.x - p.x), p.y + t * (q.y - p.y)];
  };
  const pts = [];
  if ((a < L) !== (b < L)) pts.push(cut(P[0], P[1], a, b));
  if ((b < L) !== (c < L)) pts.push(cut(P[1], P[2], b, c));
  if ((c < L) !== (d < L)) pts.push(cut(P[2], P[3], c, d));
  if ((d < L) !== (a < L)) pts.push(cut(P[3], P[0], d, a));
  return pts.length === 4 ? [[pts[0], pts[1]], [pts[2], pts[3]]] : pts.length === 2 ? [[pts[0], pts[1]]] : [];
}

// A filled contour map of `rows` (rows[j][i] is the loss at xs[i], ys[j]; a row may be null: not yet computed).
export function drawContour(canvas, xs, ys, rows, { label = "" } = {}) {
  const [ctx, w, hgt] = prepare(canvas);
  const m = { l: 34, r: 8, t: 8, b: 30 };
  const pw = w - m.l - m.r;
  const ph = hgt - m.t - m.b;
  const nx = xs.length;
  const ny = ys.length;
  // Colour: one pixel per grid point, smoothed up to the plot's size (bilinear): rows not yet in stay clear.
  const small = document.createElement("canvas");
  small.width = nx;
  small.height = ny;
  const sctx = small.getContext("2d");
  const img = sctx.createImageData(nx, ny);
  rows.forEach((row, j) => {
    if (!row) return;
    row.forEach((v, i) => {
      const k = ((ny - 1 - j) * nx + i) * 4; // y grows upward on the plot
      if (!known(v)) return;
      img.data.set([...colour(v), 255], k);
    });
  });
  sctx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  const cell = [pw / nx, ph / ny];
  ctx.drawImage(small, m.l, m.t, pw, ph);
  // Isolines through the cell centres' values.
  const px = (i) => m.l + (i + 0.5) * cell[0];
  const py = (j) => m.t + ph - (j + 0.5) * cell[1];
  ctx.lineWidth = 0.8;
  ctx.strokeStyle = "rgba(255,255,255,0.55)";
  ctx.beginPath();
  for (let j = 0; j + 1 < ny; j++) {
    if (!rows[j] || !rows[j + 1]) continue;
    for (let i = 0; i + 1 < nx; i++) {
      const vals = [rows[j][i], rows[j][i + 1], rows[j + 1][i + 1], rows[j + 1][i]];
      if (!vals.every(known)) continue;
      const corners = [
        { x: px(i), y: py(j), v: vals[0] }, { x: px(i + 1), y: py(j), v: vals[1] },
        { x: px(i + 1), y: py(j + 1), v: vals[2] }, { x: px(i), y: py(j + 1), v: vals[3] },
      ];
      for (const level of LEVELS) {
        for (const [p, q] of cellSegments(corners, level)) {
          ctx.moveTo(p[0], p[1]);
          ctx.lineTo(q[0], q[1]);
        }
      }
    }
  }
  ctx.stroke();
  axes(ctx, m, pw, ph, xs, ys);
  // The trained weights: the plane's centre.
  const cx = m.l + pw / 2;
  const cy = m.t + ph / 2;
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.moveTo(cx - 5, cy);
  ctx.lineTo(cx + 5, cy);
  ctx.moveTo(cx, cy - 5);
  ctx.lineTo(cx, cy + 5);
  ctx.stroke();
  if (label) {
    ctx.fillStyle = "#fff";
    ctx.fillText(label, m.l + 6, m.t + 14);
  }
}

function axes(ctx, m, pw, ph, xs, ys) {
  ctx.strokeStyle = "#9ca3af";
  ctx.lineWidth = 1;
  ctx.strokeRect(m.l, m.t, pw, ph);
  ctx.fillStyle = "#374151";
  ctx.textAlign = "center";
  const lo = xs[0];
  const hi = xs[xs.length - 1];
  for (const [v, f] of [[lo, 0], [0, 0.5], [hi, 1]]) {
    ctx.fillText(String(Number(v.toFixed(2))), m.l + f * pw, m.t + ph + 12);
    ctx.fillText(String(Number((ys[0] + f * (ys[ys.length - 1] - ys[0])).toFixed(2))), m.l - 15, m.t + ph - f * ph + 4);
  }
  ctx.fillText("α (direction δ)", m.l + pw / 2, m.t + ph + 25);
  ctx.save();
  ctx.translate(10, m.t + ph / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText("β (direction η)", 0, 0);
  ctx.restore();
  ctx.textAlign = "start";
}

// Brightness of a quad lit from the upper left (Lambert, with ambient light), so slopes read as slopes.
function shade(at) {
  const [p, q, , r] = at;
  const a = [q[0] - p[0], q[1] - p[1], (q[2] - p[2]) * 1.5];
  const b = [r[0] - p[0], r[1] - p[1], (r[2] - p[2]) * 1.5];
  const n = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const len = Math.hypot(...n) || 1;
  const light = [-0.4, 0.3, 0.87];
  return 0.55 + 0.45 * Math.abs((n[0] * light[0] + n[1] * light[1] + n[2] * light[2]) / len);
}

// The loss as a 3-D surface: height min(loss, SURFACE_CLIP), colour on the contour map's log scale.
export function drawSurface(canvas, xs, ys, rows) {
  const [ctx, w, hgt] = prepare(canvas);
  const nx = xs.length;
  const ny = ys.length;
  const az = -Math.PI / 4; // looking from the front-left corner
  const el = 0.9; // how far the view tilts down (0: from the side, 1: from above)
  const lift = 0.55; // screen height of the clipped maximum, in units of the grid's half-width
  const scale = Math.min(w, hgt) * 0.34;
  const z0 = hgt * 0.66;
  // Grid coordinates in [-1, 1], height in [0, 1].
  const project = (u, v, z) => {
    const xr = u * Math.cos(az) - v * Math.sin(az);
    const yr = u * Math.sin(az) + v * Math.cos(az);
    return [w / 2 + xr * scale, z0 - yr * scale * el - z * scale * lift, yr];
  };
  const U = (i) => (2 * i) / (nx - 1) - 1;
  const V = (j) => (2 * j) / (ny - 1) - 1;
  const height = (v) => Math.min(v, SURFACE_CLIP) / SURFACE_CLIP;
  // The floor's outline, for scale.
  ctx.strokeStyle = "#d1d5db";
  ctx.beginPath();
  [[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]].forEach(([u, v], k) => {
    const [x, y] = project(u, v, 0);
    if (k) ctx.lineTo(x, y);
    else ctx.moveTo(x, y);
  });
  ctx.stroke();
  const quads = [];
  for (let j = 0; j + 1 < ny; j++) {
    if (!rows[j] || !rows[j + 1]) continue;
    for (let i = 0; i + 1 < nx; i++) {
      const vals = [rows[j][i], rows[j][i + 1], rows[j + 1][i + 1], rows[j + 1][i]];
      if (!vals.every(known)) continue;
      const at = [[i, j], [i + 1, j], [i + 1, j + 1], [i, j + 1]].map(([a, b], k) => [U(a), V(b), height(vals[k])]);
      const corners = at.map(([u, v, z]) => project(u, v, z));
      const depth = corners.reduce((s, c) => s + c[2], 0) / 4;
      quads.push({ corners, depth, mean: vals.reduce((s, v) => s + v, 0) / 4, light: shade(at) });
    }
  }
  quads.sort((a, b) => b.depth - a.depth); // far first
  ctx.lineWidth = 0.5;
  ctx.strokeStyle = "rgba(31,41,55,0.35)";
  for (const q of quads) {
    ctx.beginPath();
    q.corners.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.closePath();
    ctx.fillStyle = rgb(colour(q.mean).map((c) => Math.round(c * q.light)));
    ctx.fill();
    ctx.stroke();
  }
  ctx.fillStyle = "#374151";
  ctx.fillText(`height: loss, cut at ${SURFACE_CLIP}`, 6, hgt - 6);
}

// A horizontal colour bar for the contour maps' log scale, with the isoline levels marked.
export function drawScale(canvas) {
  const [ctx, w, hgt] = prepare(canvas);
  const m = 18; // room for the end labels
  const bw = w - 2 * m;
  for (let x = 0; x < bw; x++) {
    ctx.fillStyle = rgb(colour(10 ** (LOG_LO + ((LOG_HI - LOG_LO) * x) / bw)));
    ctx.fillRect(m + x, 2, 1, 12);
  }
  ctx.fillStyle = "#374151";
  ctx.textAlign = "center";
  for (let e = LOG_LO; e <= LOG_HI; e++) {
    const x = m + ((e - LOG_LO) / (LOG_HI - LOG_LO)) * bw;
    ctx.fillRect(x, 14, 1, 3);
    ctx.fillText(e >= 0 ? String(10 ** e) : `0.${"0".repeat(-e - 1)}1`, x, hgt - 3);
  }
  ctx.textAlign = "start";
}
