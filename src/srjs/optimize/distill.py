"""The one fine-tune loop that pruning and clustering share: distillation from the parent.

The parent (teacher) labels its own inputs, so any unlabeled photos serve: random LR patches
are cut from the calibration images at three sizes (`calibration_images`: `--calib DIR`, or
the builtin photos of `srjs.evaluate.datasets`), and the student learns the L1 distance to
the teacher's output.
Labelled batches are reused (`LabelledBatches`): the parent's forward pass is the dearest part
of a step once the student is smaller than it. The loop is bounded by `steps` and/or
`time_budget_s`. A KeyboardInterrupt propagates
unchanged: callers build variants inside `srjs.modeldir.atomic_dir`, so Ctrl-C leaves no
half-written variant.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from srjs import image_channels
from srjs.errors import BadInput


@dataclass
class FineTuneReport:
    """What one fine-tune did. seconds: wall time of the loop (s); final_loss: mean L1 of the
    last steps, in [0, 1] units; first_loss: L1 of the student at step 0."""

    steps: int
    seconds: float
    final_loss: float
    first_loss: float
    patch: int
    batch: int
    learning_rate: float
    step_seconds: float = float("nan")  # median wall time of one step after the first (tracing), s

    def to_dict(self) -> dict:
        return asdict(self)


def calibration_images(calib: str | Path | None, scale: int, channels: int = 3,
                       max_images: int = 8) -> list[np.ndarray]:
    """LR training images, HxWxchannels float32 in [0, 1]: `calib` folder or 'builtin' / None.

    channels: the model's image channels; grayscale models get the luminance, RGBA ones an
    opaque alpha (`srjs.image_channels`).

    Only the calibration half of `srjs.optimize.calib.split_images` is used, so a variant's
    held-out numbers come from images the fine-tune never saw. Each HR photo is used at three
    sizes: bicubic-downscaled by `scale` (the LR a real user feeds the model), by 2, and as
    it is (photos people upscale are not all downscaled ones). Why: the builtin calibration
    half is three photos of 300-512 px, 40k LR pixels at x4; a 3M-parameter student distilled on
    those alone learned them (training L1 kept falling, held-out fidelity did not), and the
    other two sizes give it 20x the pixels. Paired LR images are used as they are.
    BadInput for an empty or unreadable folder.
    """
    from srjs.evaluate.resize import bicubic_downsample
    from srjs.optimize.calib import split_images

    images, _ = split_images(str(calib) if calib else "builtin")
    out = []
    for image in images[:max_images]:
        if image.lr is not None:
            sizes = [image.lr]
        else:
            sizes = [bicubic_downsample(image.hr, factor) if factor > 1 else image.hr
                     for factor in dict.fromkeys((scale, 2, 1))]
        for lr in sizes:
            rgb = np.clip(np.asarray(lr, np.float32) / 255.0, 0.0, 1.0)
            out.append(image_channels.to_model(rgb, None, channels, 1.0))
    return out


class PatchSampler:
    """Random LR patches (N x patch x patch x C, float32; C: the images' channels), seeded."""

    def __init__(self, images: Sequence[np.ndarray], patch: int, value_max: float, seed: int = 0):
        self.images = [im for im in images if im.shape[0] >= patch and im.shape[1] >= patch]
        if not self.images:
            raise BadInput(f"no calibration image is at least {patch}x{patch} pixels after downscaling")
        self.patch = patch
        self.value_max = float(value_max)
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> np.ndarray:
        out = np.empty((n, self.patch, self.patch, self.images[0].shape[-1]), np.float32)
        for i in range(n):
            im = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(im.shape[0] - self.patch + 1)
            x = self.rng.integers(im.shape[1] - self.patch + 1)
            crop = im[y : y + self.patch, x : x + self.patch]
            # Flips and transposes: 8x the distinct patches for free.
            if self.rng.integers(2):
                crop = crop[:, ::-1]
            if self.rng.integers(2):
                crop = crop.transpose(1, 0, 2)
            out[i] = crop
        return out * self.value_max


class LabelledBatches:
    """Input batches with the teacher's outputs, each labelled once and drawn again later.

    Every `fresh_every`-th draw cuts and labels a new batch; the others repeat one of the
    batches labelled so far, at random (the newest `keep_bytes` of them are kept). Why: a
    23-block parent's forward pass costs 1.6x a whole training step of its 5x smaller student,
    so labelling every batch spent 62% of a fine-tune on the parent; labelling one in four
    gives about 1.9x the steps in the same time, on more distinct patches than a fixed pool.
    """

    def __init__(self, sampler: PatchSampler, label, batch: int, fresh_every: int = 4,
                 keep_bytes: int = 512 << 20):
        self.sampler, self.label, self.size = sampler, label, batch
        self.fresh_every = max(1, int(fresh_every))
        self.keep_bytes = keep_bytes
        self.kept: list[tuple] = []
        self.draws = 0

    def draw(self):
        if self.draws % self.fresh_every == 0 or not self.kept:
            x = self.sampler.batch(self.size)
            pair = (x, self.label(x))
            self.kept.append(pair)
            pair_bytes = x.nbytes + pair[1].nbytes
            if len(self.kept) * pair_bytes > self.keep_bytes:
                self.kept.pop(0)
        else:
            pair = self.kept[self.sampler.rng.integers(len(self.kept))]
        self.draws += 1
        return pair


def distill(student, teacher, images: Sequence[np.ndarray], *, value_max: float = 1.0,
            steps: int | None = None, time_budget_s: float | None = None, patch: int = 32,
            batch: int = 4, learning_rate: float = 1e-4, callbacks: Sequence = (),
            progress: bool = False, seed: int = 0, cosine_decay: bool = False,
            fresh_every: int = 4):
    """Fine-tune `student` (a keras.Model, changed in place) towards `teacher`'s outputs.

    images: LR images in [0, 1] (`calibration_images`); value_max: the models' input scale
    (1 or 255). steps: optimizer steps; time_budget_s: wall-clock bound in seconds; at least
    one must be given. callbacks: Keras callbacks (tfmot's UpdatePruningStep) driven like
    model.fit drives them, as one epoch. cosine_decay: lower the learning rate along a half
    cosine to 0 at the end of the steps or the time budget (whichever comes first), so the
    last steps settle instead of jittering. fresh_every: label a new batch every this many
    steps, repeat earlier ones in between (`LabelledBatches`; 1 labels every step). Returns
    (student, FineTuneReport).
    """
    from tqdm import tqdm

    from srjs.tf import keras, tf

    if steps is None and time_budget_s is None:
        raise BadInput("a fine-tune needs --steps or --time-budget")
    if steps is not None and steps < 1:
        raise BadInput(f"--steps must be at least 1 (got {steps})")
    if time_budget_s is not None and time_budget_s <= 0:
        raise BadInput(f"--time-budget must be positive seconds (got {time_budget_s})")
    sampler = PatchSampler(images, patch, value_max, seed)
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    # The loss is L1 in [0, 1] units whatever the model's value range, so one learning rate fits.
    inv = 1.0 / float(value_max)

    @tf.function(reduce_retracing=True)
    def label(x):
        return teacher(x, training=False)

    batches = LabelledBatches(sampler, lambda x: label(tf.constant(x)).numpy(), batch, fresh_every)

    @tf.function(reduce_retracing=True)
    def train_step(x, target):
        with tf.GradientTape() as tape:
            pred = student(x, training=True)
            loss = tf.reduce_mean(tf.abs(pred - target)) * inv
        grads = tape.gradient(loss, student.trainable_variables)
        optimizer.apply_gradients(zip(grads, student.trainable_variables))
        return loss

    callbacks = list(callbacks)
    for cb in callbacks:
        cb.set_model(student)
        cb.on_train_begin()
    total = steps if steps is not None else None
    bar = tqdm(total=total, desc="fine-tune", unit="step", leave=False,
               disable=None if progress else True)
    start = time.perf_counter()
    losses: list[float] = []
    times: list[float] = []
    done = 0
    try:
        while steps is None or done < steps:
            elapsed = time.perf_counter() - start
            if time_budget_s is not None and elapsed >= time_budget_s:
                break
            if cosine_decay:
                done_fraction = max(done / steps if steps else 0.0,
                                    elapsed / time_budget_s if time_budget_s else 0.0)
                optimizer.learning_rate.assign(learning_rate * 0.5 * (1 + np.cos(np.pi * min(done_fraction, 1.0))))
            for cb in callbacks:
                cb.on_train_batch_begin(done)
            t0 = time.perf_counter()
            x, target = batches.draw()
            loss = float(train_step(tf.constant(x), tf.constant(target)))
            times.append(time.perf_counter() - t0)
            for cb in callbacks:
                cb.on_train_batch_end(done, {"loss": loss})
            losses.append(loss)
            done += 1
            bar.update(1)
            if done % 5 == 0 or done == 1:
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.5f}")
    finally:
        bar.close()
    for cb in callbacks:
        cb.on_epoch_end(0, {"loss": losses[-1] if losses else float("nan")})
        cb.on_train_end()
    seconds = time.perf_counter() - start
    tail = losses[-max(1, min(20, len(losses) // 5)) :] if losses else [float("nan")]
    report = FineTuneReport(
        steps=done, seconds=round(seconds, 2), final_loss=float(np.mean(tail)),
        first_loss=float(losses[0]) if losses else float("nan"), patch=patch, batch=batch,
        learning_rate=learning_rate,
        step_seconds=float(np.median(times[1:])) if len(times) > 1 else float("nan"),
    )
    return student, report
