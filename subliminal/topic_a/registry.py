"""Every Topic A experiment, declared once: its name, typed Config (flags, defaults, --quick, validation), the
summary's grouping, tests and extra rows, and where the report lists it (`spec.Experiment`).

The scripts import their declaration from here (`from subliminal.topic_a.registry import EXP1 as EXPERIMENT,
Exp1Config as Config`) and add only how they run (`main`) and draw (`plot`). The analysis
(`python -m subliminal.topic_a.analysis`), the report (wall times; the mechanism sections, script table and run
commands), the benches and the tests read this registry and never the scripts. A new mechanism sweep is its
`declare(sweep_experiment(...))` here (a Config whose quick() names its scale and its own changes; its `Sweep`, its
`Report` row and `tiny_args`), its script `topic_a_<name>.py`, and its section's marker in docs/topic_a_mechanisms.md;
tests/test_topic_a_spec.py checks that scripts and declarations match, tests/test_mechanisms.py runs and reports it.
Mechanisms are listed in the docs' script table, run commands and verdicts in the order they are declared here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from subliminal.cli import UserError
from subliminal.topic_a import noise_regime
from subliminal.topic_a.experiments import EXP1_MILESTONES
from subliminal.topic_a.mech_runs import convergence_epochs, convergence_tests, probe_tests, sweep_experiment
from subliminal.topic_a.probes import FEATURES
from subliminal.topic_a.spec import Experiment, Report, Sweep, Trend, paired
from subliminal.topic_a.train import CONDITIONS, SOURCES, TopicAConfig

EXPERIMENTS: dict[str, Experiment] = {}  # name → declaration, filled by declare(); analysis.experiments() sorts it


def declare(exp: Experiment) -> Experiment:
    """Add `exp` to the registry (its name once)."""
    if exp.name in EXPERIMENTS:
        raise ValueError(f"Topic A experiment {exp.name} is declared twice")
    EXPERIMENTS[exp.name] = exp
    return exp


# ---------------------------------------------------------------------- --quick: what every quick run reduces, once
# the seed's scripts and the noise regime: 5 models on 20k images, the reference's epochs
QUICK_SEED = {"n_models": 5, "n_train": 20_000, "n_distill": 20_000}
# the mechanism scripts: 5 models on 10k images in batches of 256, teachers 2 epochs, students 3
QUICK_MECHANISM = {"n_models": 5, "n_train": 10_000, "n_distill": 10_000, "batch_size": 256, "teacher_epochs": 2,
                   "distill_epochs": 3}


def quick(cls: type, scale: dict, **changes):
    """`cls`'s quick configuration: the reductions of `scale` (QUICK_SEED or QUICK_MECHANISM), then the script's own
    `changes` (its sweep's shorter lists, ...)."""
    return cls(**{**scale, **changes})


# ---------------------------------------------------------------------- the seed's five scripts
@dataclass
class BaselineConfig(TopicAConfig):
    @classmethod
    def quick(cls) -> BaselineConfig:
        return quick(cls, QUICK_SEED)


BASELINE = declare(Experiment("topic_a", BaselineConfig, by=("condition",), tests=paired()))


@dataclass
class Exp1Config(TopicAConfig):
    milestones: tuple[int, ...] = field(default=EXP1_MILESTONES, metadata={"help": "distillation epochs to evaluate"})

    @classmethod
    def quick(cls) -> Exp1Config:
        return quick(cls, QUICK_SEED, milestones=(1, 2, 5, 10))

    def validate(self) -> None:
        super().validate()
        if not self.milestones or min(self.milestones) < 1:
            raise UserError("--milestones must be positive epoch counts")


EXP1 = declare(Experiment("topic_a_exp1", Exp1Config, by=("condition", "distill_epochs"), tests=paired(["distill_epochs"])))


@dataclass
class Exp2Config(TopicAConfig):
    teacher_sweep: tuple[int, ...] = field(default=(0, 1, 2, 5, 10, 20), metadata={"help": "teacher epochs to compare"})

    @classmethod
    def quick(cls) -> Exp2Config:
        return quick(cls, QUICK_SEED, teacher_sweep=(0, 1, 2, 5))

    def validate(self) -> None:
        super().validate()
        if not self.teacher_sweep or min(self.teacher_sweep) < 0:
            raise UserError("--teacher-sweep must be epoch counts ≥ 0")


EXP2 = declare(Experiment("topic_a_exp2", Exp2Config, by=("condition", "teacher_epochs"), tests=paired(["teacher_epochs"])))


@dataclass
class Exp3Config(TopicAConfig):
    sources: tuple[str, ...] = field(default=SOURCES, metadata={"help": f"distillation inputs among {', '.join(SOURCES)}"})

    @classmethod
    def quick(cls) -> Exp3Config:
        return quick(cls, QUICK_SEED)

    def validate(self) -> None:
        super().validate()
        bad = [s for s in self.sources if s not in SOURCES]
        if bad:
            raise UserError(f"unknown --sources {', '.join(bad)}; choose from {', '.join(SOURCES)}")


EXP3 = declare(Experiment("topic_a_exp3", Exp3Config, by=("source", "condition"), tests=paired(["source"])))


@dataclass
class MaximizeConfig(TopicAConfig):
    teacher_epochs: int = field(default=2, metadata={"help": "teacher training epochs on MNIST"})
    distill_epochs: int = field(default=100, metadata={"help": "student distillation epochs"})
    milestone_every: int = field(default=10, metadata={"help": "evaluate (and checkpoint) every this many epochs"})
    conditions: tuple[str, ...] = field(default=("student_aux",), metadata={"help": "conditions to run (add cross_aux for the control)"})

    @classmethod
    def quick(cls) -> MaximizeConfig:
        return quick(cls, QUICK_SEED, distill_epochs=20, milestone_every=5)

    def validate(self) -> None:
        super().validate()
        if self.milestone_every < 1 or self.distill_epochs < 1:
            raise UserError("--milestone-every and --distill-epochs must be ≥ 1")
        bad = [c for c in self.conditions if c not in CONDITIONS]
        if bad:
            raise UserError(f"unknown --conditions {', '.join(bad)}; choose from {', '.join(CONDITIONS)}")


# student_aux vs cross_aux where --conditions includes the control
MAXIMIZE = declare(Experiment("topic_a_maximize", MaximizeConfig, by=("condition", "distill_epochs"),
                              tests=paired(["distill_epochs"])))


# ---------------------------------------------------------------------- the noise regime
@dataclass
class NoiseRegimeConfig(TopicAConfig):
    pool_sizes: tuple[int, ...] = field(default=(1000, 10_000, 60_000), metadata={"help": "distinct noise images per model (fixed regime)"})
    mnist_sizes: tuple[int, ...] = field(default=(1000, 10_000, 60_000), metadata={"help": "MNIST subset sizes used as distillation inputs"})
    curve_milestones: tuple[int, ...] = field(default=(1, 2, 5, 10, 20, 40), metadata={"help": "epochs for the fixed-vs-fresh curve (empty: skip)"})
    curve_conditions: tuple[str, ...] = field(default=("student_aux", "cross_aux"), metadata={
        "help": "student conditions for the fresh-noise curve (cross_aux: its control, 40 more model-epochs)"})

    @classmethod
    def quick(cls) -> NoiseRegimeConfig:
        return quick(cls, QUICK_SEED, pool_sizes=(1000, 20_000), mnist_sizes=(1000, 20_000), curve_milestones=(1, 5, 10))


NOISE_REGIME = declare(Experiment("topic_a_noise_regime", NoiseRegimeConfig, by=("part", "setting", "condition", "distill_epochs"),
                                  tests=lambda df, cfg: noise_regime.tests_vs_reference(df, cfg.n_distill),
                                  extras=noise_regime.with_params, group="noise"))


# ---------------------------------------------------------------------- the mechanism scripts (issue 4)
@dataclass
class ConvergenceConfig(TopicAConfig):
    milestones: tuple[int, ...] = field(default=(0, 1, 2, 5, 10, 20), metadata={"help": "distillation epochs to measure (0 = start)"})
    n_eval: int = field(default=10_000, metadata={"help": "MNIST test images for CKA / cosine"})

    @classmethod
    def quick(cls) -> ConvergenceConfig:
        # its milestones are the students' epochs: distill_epochs (unused) stays at the reference's 5
        return quick(cls, QUICK_MECHANISM, distill_epochs=5, milestones=(0, 1, 3), n_eval=2000)

    def validate(self) -> None:
        super().validate()
        if not self.milestones or min(self.milestones) < 0:
            raise UserError("--milestones must be epoch counts ≥ 0")
        if not 2 <= self.n_eval <= 10_000:
            raise UserError("--n-eval must be in 2..10000")


MECH_CONVERGENCE = declare(Experiment(
    "topic_a_mech_convergence", ConvergenceConfig, by=("condition", "distill_epochs"), tests=lambda df, cfg: convergence_tests(df),
    extras=convergence_epochs, group="mechanism",
    report=Report("a_mech_convergence", "do same-init students converge to the teacher?",
                  "at distillation epochs 0, 1, 2, 5, 10, 20: linear CKA and mean per-image cosine of teacher vs student "
                  "activations (both hidden layers, 10k MNIST test images), cosine of the student's and teacher's weight "
                  "updates (w1, w2); same-init vs cross-model; correlation with accuracy across models", section="convergence"),
    tiny_args=("--milestones", "0", "1", "2", "--n-eval", "1000")))


@dataclass
class ProbeConfig(TopicAConfig):
    features: tuple[str, ...] = field(default=FEATURES, metadata={"help": f"feature sets to probe among {', '.join(FEATURES)}"})
    n_probe_train: int = field(default=10_000, metadata={"help": "MNIST training images for fitting the probes (≤ --n-train)"})
    probe_l2: float = field(default=1e-4, metadata={"help": "L2 penalty on the probe weights (standardised features)"})
    probe_iters: int = field(default=100, metadata={"help": "L-BFGS iterations per probe"})

    @classmethod
    def quick(cls) -> ProbeConfig:
        return quick(cls, QUICK_MECHANISM, n_probe_train=5000, probe_iters=50)

    def validate(self) -> None:
        super().validate()
        bad = [f for f in self.features if f not in FEATURES]
        if bad:
            raise UserError(f"unknown --features {', '.join(bad)}; choose from {', '.join(FEATURES)}")
        if not 10 <= self.n_probe_train <= self.n_train:
            raise UserError("--n-probe-train must be in 10..--n-train")


MECH_PROBE = declare(Experiment(
    "topic_a_mech_probe", ProbeConfig, by=("condition", "features"), tests=lambda df, cfg: probe_tests(df), group="mechanism",
    report=Report("a_mech_probe", "is the random readout the bottleneck? does the ghost channel carry digits?",
                  "logistic-regression probes (batched full-batch L-BFGS, standardised features, 10k train images → 10k "
                  "test) on frozen h1, h2, the 10 digit logits and the m ghost logits of the reference, teacher, aux-only "
                  "student and cross-model student, beside each model's own readout argmax", section="probe"),
    tiny_args=("--distill-epochs", "1", "--n-probe-train", "2000", "--probe-iters", "20")))


@dataclass
class AuxWidthConfig(TopicAConfig):
    aux_widths: tuple[int, ...] = field(default=(1, 2, 3, 5, 10, 30), metadata={"help": "numbers of auxiliary logits m"})

    @classmethod
    def quick(cls) -> AuxWidthConfig:
        return quick(cls, QUICK_MECHANISM, aux_widths=(1, 3, 10))

    def validate(self) -> None:
        super().validate()
        if not self.aux_widths or min(self.aux_widths) < 1:
            raise UserError("--aux-widths must be ≥ 1")


MECH_AUX_WIDTH = declare(sweep_experiment(
    "topic_a_mech_aux_width", AuxWidthConfig,
    Sweep(["n_aux"], reference=lambda cfg: f"m={cfg.n_aux}",
          trend=Trend("n_aux", "peer report: more auxiliary logits carry more transfer (and the seed's 3-logit bottleneck)",
                      "the number of ghost logits", +1)),
    Report("a_mech_aux_width", "does a wider ghost channel carry more?",
           "m = 1, 2, 3, 5, 10, 30 auxiliary logits, own teachers per m. m = 1 is a built-in null: a softmax over one "
           "logit is constant, so the KL gives no gradient"),
    tiny_args=("--distill-epochs", "1", "--aux-widths", "2", "3")))


@dataclass
class HiddenWidthConfig(TopicAConfig):
    widths: tuple[int, ...] = field(default=(64, 128, 256, 512, 1024), metadata={"help": "hidden widths H (both layers)"})

    @classmethod
    def quick(cls) -> HiddenWidthConfig:
        return quick(cls, QUICK_MECHANISM, widths=(64, 256))

    def validate(self) -> None:
        super().validate()
        if not self.widths or min(self.widths) < 1:
            raise UserError("--widths must be ≥ 1")


MECH_HIDDEN_WIDTH = declare(sweep_experiment(
    "topic_a_mech_hidden_width", HiddenWidthConfig,
    Sweep(["hidden"], reference=lambda cfg: f"H={cfg.hidden}",
          trend=Trend("hidden", "peer report: wider networks transfer less", "hidden width", -1)),
    Report("a_mech_hidden_width", "do wider networks transfer less?", "H = 64, 128, 256, 512, 1024, own teachers per H"),
    tiny_args=("--distill-epochs", "1", "--widths", "32", "256")))


@dataclass
class InitConfig(TopicAConfig):
    sigmas: tuple[float, ...] = field(default=(0.0, 0.005, 0.01, 0.02, 0.05, 0.1), metadata={"help": "student init noise stds σ"})
    schemes: bool = field(default=True, metadata={"help": "also run init scheme × input range (part 2)"})

    @classmethod
    def quick(cls) -> InitConfig:
        return quick(cls, QUICK_MECHANISM, sigmas=(0.0, 0.01, 0.1))

    def validate(self) -> None:
        super().validate()
        if not self.sigmas or min(self.sigmas) < 0:
            raise UserError("--sigmas must be ≥ 0")


MECH_INIT = declare(sweep_experiment(
    "topic_a_mech_init", InitConfig, Sweep(["student_init_noise", "init", "signed_inputs"], reference=lambda cfg: "σ=0"),
    Report("a_mech_init", "how exact must the shared init be? which init/input choice carries the effect?",
           "Gaussian noise σ = 0, 0.005, 0.01, 0.02, 0.05, 0.1 on every weight and bias of the student's copy "
           "(`--student-init-noise`); init `reference`/`torch` × inputs [−1, 1]/[0, 1)", section="init"),
    tiny_args=("--distill-epochs", "1", "--sigmas", "0", "0.05")))


@dataclass
class OptimConfig(TopicAConfig):
    student_lrs: tuple[float, ...] = field(default=(1e-4, 3e-4, 1e-3, 3e-3), metadata={"help": "students' Adam learning rates"})
    weight_decays: tuple[float, ...] = field(default=(0.0, 1e-4, 1e-3), metadata={"help": "students' Adam weight decays"})
    teacher_decays: tuple[float, ...] = field(default=(1e-4,), metadata={
        "help": "weight decays applied to the teachers as well as the students (own teachers per value; 0 = none)"})
    grid: bool = field(default=False, metadata={
        "help": "full lr × weight-decay grid (12 settings) instead of one knob at a time around the baseline (6)"})

    @classmethod
    def quick(cls) -> OptimConfig:
        return quick(cls, QUICK_MECHANISM, student_lrs=(3e-4, 1e-3), weight_decays=(0.0, 1e-4), teacher_decays=(1e-4,))

    def validate(self) -> None:
        super().validate()
        if not self.student_lrs or min(self.student_lrs) <= 0 or not self.weight_decays or min(self.weight_decays) < 0:
            raise UserError("--student-lrs must be > 0 and --weight-decays ≥ 0")
        if min(self.teacher_decays, default=0) < 0:
            raise UserError("--teacher-decays must be ≥ 0")


# the reference of the paired tests: the first setting, the baseline (students with the teacher's lr, no decay)
MECH_OPTIM = declare(sweep_experiment(
    "topic_a_mech_optim", OptimConfig, Sweep(["lr", "weight_decay", "teacher_weight_decay"], reference=lambda cfg: None),
    Report("a_mech_optim", 'do the students\' optimiser settings matter (wd = 1e-4 "collapses")?',
           "students' Adam lr 1e-4, 3e-4, 1e-3, 3e-3 (wd 0) and weight decay 0, 1e-4, 1e-3 (lr 3e-4), one knob at a time "
           "(`--grid` for all 12 pairs), all distilling the same teachers (lr 3e-4); records the digit readout's norm "
           "relative to its init, which Adam's L2 term shrinks although the ghost loss never touches it. `--teacher-decays` "
           "(default 1e-4) adds a setting where the teachers decay too (own teachers), with their ghost readout's norm, "
           "which the digit loss never touches either", section="optim"),
    tiny_args=("--distill-epochs", "1", "--student-lrs", "3e-4", "--weight-decays", "0", "1e-3")))
