"""Cell state, shape/texture model and the per-frame motion simulation used by
:mod:`sam2_plugins.synthetic.cells`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._common import gaussian_spots, smooth_noise

TEX_SIZE = 64  # texture grid covering the unit disk of a cell's normalised body frame
N_HARM = 4  # boundary harmonics k = 2..5
PRE_DIVISION = 6  # frames during which a mother elongates before it splits
SISTER_BOND = 4  # frames after division during which the daughters stay attached


@dataclass
class Cell:
    """Mutable state of one simulated cell (one track)."""

    uid: int
    parent: int
    pos: np.ndarray  # (y, x) centre in pixels
    vel: np.ndarray  # (y, x) smooth random-walk velocity, px/frame
    radius: float  # mean radius in pixels
    target_radius: float
    aspect: float  # >= 1, major axis along `angle`
    target_aspect: float
    angle: float  # orientation of the major axis (radians, x towards y)
    harm_amp: np.ndarray  # (N_HARM,) boundary irregularity
    harm_phase: np.ndarray  # (N_HARM,)
    texture: np.ndarray  # (TEX_SIZE, TEX_SIZE) float32 in the normalised body frame
    brightness: float
    start: int = 0  # first frame in which the cell takes part in the simulation
    division_frame: int | None = None
    bias: np.ndarray = field(default_factory=lambda: np.zeros(2))
    bias_from: int = 0  # frame from which `bias` applies
    entering: bool = False  # bias switches off (and the wall on) once well inside
    wall: bool = True  # soft wall keeps the cell in the field of view
    partner: int = 0  # uid of a cell it stays attached to (touching pair)
    bond_until: int = 10**9  # frame until which the partner bond holds
    seen: bool = False  # has had at least one visible pixel

    def extent(self) -> float:
        """Upper bound of the distance from the centre to the boundary, in pixels."""
        return self.radius * np.sqrt(self.aspect) * (1.0 + float(np.abs(self.harm_amp).sum())) + 1.5


def make_texture(rng: np.random.Generator, style: str) -> np.ndarray:
    """Per-cell internal texture: fluorescence emission or phase optical thickness."""
    g = np.linspace(-1.0, 1.0, TEX_SIZE, dtype=np.float32)
    gy, gx = g[:, None], g[None, :]
    ny, nx = rng.uniform(-0.18, 0.18, 2)
    ra, rb = rng.uniform(0.38, 0.56, 2)
    th = rng.uniform(0, np.pi)
    c, s = np.cos(th), np.sin(th)
    ux, uy = (gx - nx) * c + (gy - ny) * s, -(gx - nx) * s + (gy - ny) * c
    dn = np.sqrt((ux / ra) ** 2 + (uy / rb) ** 2)
    nucleus = 1.0 / (1.0 + np.exp(-(1.0 - dn) * 14.0))
    n_spots = int(rng.integers(6, 16))
    ang = rng.uniform(0, 2 * np.pi, n_spots)
    rad = np.sqrt(rng.uniform(0.15, 0.85, n_spots))
    spots = np.stack([rad * np.sin(ang), rad * np.cos(ang)], axis=1)
    n_nucleoli = int(rng.integers(1, 4))
    nuc_pts = np.array([ny, nx]) + rng.uniform(-0.5, 0.5, (n_nucleoli, 2)) * np.array([rb, ra])
    nucleoli = gaussian_spots(gy, gx, nuc_pts, rng.uniform(0.04, 0.07, n_nucleoli), np.ones(n_nucleoli))
    coarse = smooth_noise(rng, (TEX_SIZE, TEX_SIZE), TEX_SIZE / 10)
    fine = smooth_noise(rng, (TEX_SIZE, TEX_SIZE), 1.5)
    if style == "fluorescence":
        cyto = rng.uniform(0.22, 0.45) * (1.0 + 0.25 * coarse)
        granules = gaussian_spots(
            gy, gx, spots, rng.uniform(0.03, 0.06, n_spots), rng.uniform(0.1, 0.35, n_spots)
        )
        chromatin = 0.95 * (1.0 + 0.14 * fine + 0.08 * coarse) - 0.3 * nucleoli
        tex = cyto * (1 - nucleus) + chromatin * nucleus + granules * (1 - nucleus)
        return np.clip(tex, 0.08, None).astype(np.float32)
    # phase: optical path difference (positive = darker)
    granules = gaussian_spots(
        gy, gx, spots, rng.uniform(0.025, 0.05, n_spots), rng.choice([-0.5, 0.45], n_spots)
    )
    ring = 4.0 * nucleus * (1.0 - nucleus)
    tex = 0.4 + 0.15 * coarse + 0.08 * fine + 0.1 * nucleus + 0.3 * ring + 0.7 * nucleoli + 1.5 * granules
    return np.clip(tex, 0.05, None).astype(np.float32)


def new_cell(
    rng: np.random.Generator, uid: int, pos: np.ndarray, radius: float, style: str, parent: int = 0
) -> Cell:
    """A freshly initialised cell with random shape, texture and brightness."""
    amp = rng.normal(0, 1, N_HARM) * np.array([0.07, 0.045, 0.03, 0.02])
    aspect = rng.uniform(1.0, 1.45)
    return Cell(
        uid=uid,
        parent=parent,
        pos=np.asarray(pos, dtype=np.float64).copy(),
        vel=rng.normal(0, 0.6, 2),
        radius=radius,
        target_radius=radius,
        aspect=aspect,
        target_aspect=aspect,
        angle=rng.uniform(0, np.pi),
        harm_amp=amp,
        harm_phase=rng.uniform(0, 2 * np.pi, N_HARM),
        texture=make_texture(rng, style),
        brightness=rng.uniform(0.55, 1.0),
    )


def handoff_entrant(
    rng: np.random.Generator, leaver: Cell, uid: int, radius: float, style: str, height: int, width: int
) -> Cell:
    """A cell that comes in through the edge a leaver goes out of, beside it, while it goes: the
    moment where a tracker must end one track and not carry it onto the newcomer."""
    axis = int(np.argmax(np.abs(leaver.bias)))  # the leaver moves out along this axis
    outward = float(np.sign(leaver.bias[axis]))
    size = np.array([height, width], float)
    pos = leaver.pos.copy()
    along = 1 - axis
    offset = rng.uniform(1.0, 2.0) * (leaver.radius + radius) * (1 if rng.random() < 0.5 else -1)
    pos[along] = np.clip(pos[along] + offset, radius, size[along] - radius)
    pos[axis] = -(radius + 2) if outward < 0 else size[axis] + radius + 2
    cell = new_cell(rng, uid, pos, radius, style)
    cell.bias = np.zeros(2)
    cell.bias[axis] = -outward * rng.uniform(1.8, 2.6)
    cell.entering, cell.wall = True, False
    # the leaver is gone after about (distance to the edge + radius) / speed frames of its bias
    to_edge = leaver.pos[axis] if outward < 0 else size[axis] - leaver.pos[axis]
    gone_after = (to_edge + leaver.radius) / max(float(np.abs(leaver.bias[axis])), 1e-3)
    cell.start = cell.bias_from = leaver.bias_from + int(rng.uniform(0.2, 0.8) * gone_after)
    return cell


@dataclass
class Footprint:
    """A cell's pixels-to-be within its clipped bounding box."""

    sl: tuple[slice, slice]
    nd: np.ndarray  # normalised radial distance (<1 inside the shape)
    ti: np.ndarray  # texture row index
    tj: np.ndarray  # texture column index


def footprint(cell: Cell, height: int, width: int) -> Footprint | None:
    """Rasterise the cell's shape over its bounding box clipped to the frame."""
    ext = cell.extent()
    y0, y1 = max(int(np.floor(cell.pos[0] - ext)), 0), min(int(np.ceil(cell.pos[0] + ext)) + 1, height)
    x0, x1 = max(int(np.floor(cell.pos[1] - ext)), 0), min(int(np.ceil(cell.pos[1] + ext)) + 1, width)
    if y0 >= y1 or x0 >= x1:
        return None
    dy = (np.arange(y0, y1, dtype=np.float32) - cell.pos[0])[:, None]
    dx = (np.arange(x0, x1, dtype=np.float32) - cell.pos[1])[None, :]
    c, s, q = np.cos(cell.angle), np.sin(cell.angle), np.sqrt(cell.aspect)
    u = (dx * np.float32(c / q) + dy * np.float32(s / q))
    v = (dy * np.float32(c * q) - dx * np.float32(s * q))
    rho = np.hypot(u, v)
    # r(phi) = R (1 + sum_k a_k cos(k phi + p_k)), evaluated with powers of e^{i phi}
    z = (u + 1j * v) / np.maximum(rho, 1e-6)
    zk = z * z
    acc = np.zeros(z.shape, np.complex64)
    for a, p in zip(cell.harm_amp, cell.harm_phase):
        acc += np.complex64(a * np.exp(1j * p)) * zk
        zk = zk * z
    rfun = (1.0 + acc.real) * np.float32(cell.radius)
    nd = rho / rfun
    half = (TEX_SIZE - 1) / 2.0
    ti = np.clip((v / rfun + 1.0) * half + 0.5, 0, TEX_SIZE - 1).astype(np.intp)
    tj = np.clip((u / rfun + 1.0) * half + 0.5, 0, TEX_SIZE - 1).astype(np.intp)
    return Footprint((slice(y0, y1), slice(x0, x1)), nd, ti, tj)


def step_cells(
    cells: list[Cell], t: int, rng: np.random.Generator, height: int, width: int, touching: bool
) -> None:
    """Advance positions, velocities and shapes of the active cells by one frame."""
    if not cells:
        return
    n = len(cells)
    pos = np.array([c.pos for c in cells])
    rad = np.array([c.radius for c in cells])
    index = {c.uid: i for i, c in enumerate(cells)}
    force = np.zeros((n, 2))
    diff = pos[:, None, :] - pos[None, :, :]
    dist = np.hypot(diff[..., 0], diff[..., 1]) + np.eye(n)
    sumr = rad[:, None] + rad[None, :]
    unit = diff / dist[..., None]
    bonded = np.zeros((n, n), dtype=bool)
    for i, c in enumerate(cells):
        j = index.get(c.partner, -1)
        if j >= 0 and t <= c.bond_until:
            bonded[i, j] = bonded[j, i] = True
    # Soft repulsion between unbonded neighbours, spring between bonded pairs.
    reach = (0.9 if touching else 1.3) * sumr
    push = np.where(~bonded & (dist < reach), 0.35 * (reach - dist), 0.0)
    np.fill_diagonal(push, 0.0)
    rest = 0.8 * sumr
    spring = np.where(bonded, -0.3 * (dist - rest), 0.0)
    force += ((push + spring)[..., None] * unit).sum(axis=1)
    for i, c in enumerate(cells):
        c.vel = 0.82 * c.vel + 0.57 * rng.normal(0, 0.8, 2)
        step = c.vel + force[i]
        if t >= c.bias_from:
            step = step + c.bias
        if c.entering:
            inside = min(c.pos[0], height - c.pos[0], c.pos[1], width - c.pos[1])
            if inside > 1.6 * c.radius:
                c.entering, c.bias, c.wall = False, np.zeros(2), True
        if c.wall:
            m = 1.1 * c.radius
            lo = np.maximum(m - c.pos, 0.0)
            hi = np.maximum(c.pos - (np.array([height, width]) - m), 0.0)
            step = step + 0.35 * (lo - hi)
            c.vel = np.where(lo > 0, np.abs(c.vel), np.where(hi > 0, -np.abs(c.vel), c.vel))
        limit = 0.35 * c.radius + np.hypot(*c.bias)
        norm = np.hypot(*step)
        if norm > limit:
            step *= limit / norm
        c.pos = c.pos + step
        # slow deformation, rotation and growth
        pre_div = c.division_frame is not None and t >= c.division_frame - PRE_DIVISION
        if pre_div:
            c.target_aspect = 1.9
            c.harm_amp *= 0.8
        else:
            if rng.random() < 0.05:
                c.target_aspect = rng.uniform(1.0, 1.45)
            c.harm_amp = 0.96 * c.harm_amp + 0.28 * rng.normal(0, 1, N_HARM) * np.array(
                [0.07, 0.045, 0.03, 0.02]
            )
            c.angle += rng.normal(0, 0.04)
        c.harm_phase += rng.normal(0, 0.05, N_HARM)
        c.aspect += 0.25 * (c.target_aspect - c.aspect)
        c.radius += 0.05 * (c.target_radius - c.radius)


def divide(
    mother: Cell, rng: np.random.Generator, uids: tuple[int, int], t: int, style: str, cycle: float
) -> list[Cell]:
    """Split an elongated mother into two attached daughters along its major axis."""
    axis = np.array([np.sin(mother.angle), np.cos(mother.angle)])
    off = 0.5 * mother.radius * np.sqrt(mother.aspect)
    daughters = []
    for sign, uid in zip((1.0, -1.0), uids):
        d = new_cell(rng, uid, mother.pos + sign * off * axis, 0.74 * mother.radius, style, mother.uid)
        d.target_radius = mother.target_radius * rng.uniform(0.9, 1.05)
        d.aspect = d.target_aspect = rng.uniform(1.05, 1.25)
        d.angle = mother.angle + np.pi / 2 + rng.normal(0, 0.15)
        d.harm_amp *= 0.5
        d.vel = sign * 0.6 * axis + rng.normal(0, 0.2, 2)
        d.brightness = float(np.clip(mother.brightness * rng.uniform(0.9, 1.1), 0.45, 1.0))
        d.start = t
        d.division_frame = t + int(cycle * rng.uniform(0.9, 1.4))
        d.partner = uids[1] if uid == uids[0] else uids[0]
        d.bond_until = t + SISTER_BOND
        daughters.append(d)
    return daughters
