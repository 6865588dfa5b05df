"""A plain Hugging Face ``Trainer`` on lipo's model, grouped by length, timed per step: the
reference loop that lipo's own training step must not be slower than."""

from __future__ import annotations

import tempfile
import time

import torch
from torch import nn
from torch.nn.functional import mse_loss
from transformers import (
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)


class LossOutput(nn.Module):
    """The Trainer wants the loss from ``forward``; lipo's model returns predictions."""

    def __init__(self, regressor):
        super().__init__()
        self.regressor = regressor

    def forward(self, input_ids, attention_mask, labels):
        z = self.regressor(input_ids, attention_mask)
        return {"loss": mse_loss(z, self.regressor.standardise(labels)), "logits": z}


class StepClock(TrainerCallback):
    """Time stamps at the start of training (optimiser and loader made) and at the end of
    every optimiser step."""

    def __init__(self):
        self.stamps: list[float] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.stamps.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())


class TrainerEpochs:
    """``seconds()``: the steps of one epoch of a fresh ``trainer.train()``, from the start of
    its loop. Whole epochs: the length-grouped sampler puts the longest batches of each group
    of 50 first, so a few steps would not be a fair sample."""

    def __init__(self, model, tokenizer, ids: list[list[int]], labels, cfg):
        self.examples = [{"input_ids": i, "labels": float(y)} for i, y in zip(ids, labels)]
        self.model, self.tokenizer, self.cfg = LossOutput(model), tokenizer, cfg
        self.folder = tempfile.mkdtemp(prefix="bench-trainer-")

    def arguments(self) -> TrainingArguments:
        # The same optimiser as lipo (torch AdamW, not the fused kernel) and batch size.
        return TrainingArguments(
            output_dir=self.folder,
            num_train_epochs=1,
            per_device_train_batch_size=self.cfg.batch_size,
            learning_rate=self.cfg.lr,
            weight_decay=self.cfg.weight_decay,
            optim="adamw_torch",
            lr_scheduler_type="constant",
            max_grad_norm=self.cfg.grad_clip,
            train_sampling_strategy="group_by_length",
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
            remove_unused_columns=False,
            dataloader_num_workers=0,
            use_cpu=not torch.cuda.is_available(),
            seed=self.cfg.seed,
        )

    def seconds(self) -> float:
        clock = StepClock()
        trainer = Trainer(
            model=self.model,
            args=self.arguments(),
            train_dataset=self.examples,
            processing_class=self.tokenizer,
            data_collator=DataCollatorWithPadding(self.tokenizer),
            callbacks=[clock],
        )
        trainer.remove_callback(PrinterCallback)  # its end-of-run summary would mix with ours
        trainer.train()
        return clock.stamps[-1] - clock.stamps[0]
