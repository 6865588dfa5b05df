"""The original study's table: every strategy, each with its control, on a random and a
scaffold split, five final seeds, at each study's own trial and epoch budgets."""

# study -> the controls its final phase also runs (lipo/strategies/__init__.py names them)
STUDIES = {
    "baseline": (),
    "mlm": (),
    "influence": ("random-k",),
    "curriculum": ("no-curriculum",),
    "active": ("random-acquisition",),
    "bitfit": (),
    "lora": (),
    "ia3": (),
}
# a split file's path, or its name in $LIPO_DATA_DIR/splits/, or random | scaffold
SPLITS = ("random_seed0.json", "scaffold.json")
SEEDS = (0, 1, 2, 3, 4)
BACKBONE = None  # the launcher's default backbone
TRIALS = None  # each study's own TRIALS (an int, or a dict study -> trials)
EPOCHS = None  # each study's own EPOCHS
# True: final seed S trains and is tested on random_seed<S> (the searches keep SPLITS), so the
# ± includes the split's variance; each split in SPLITS then repeats the same final phases
SPLIT_PER_SEED = False
