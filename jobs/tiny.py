"""A tiny GPT-2 for tests and CPU runs: a byte-level BPE tokenizer trained offline on the dataset text and
a GPT-2 built from a :class:`~transformers.GPT2Config` (random weights, seeded). Nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PAD, EOS = "<|pad|>", "<|endoftext|>"


@dataclass(frozen=True)
class TinyConfig:
    """Size of the tiny model and its tokenizer."""

    vocab_size: int = 512
    n_positions: int = 128
    n_embd: int = 64
    n_layer: int = 2
    n_head: int = 2
    seed: int = 0


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512):  # -> PreTrainedTokenizerFast
    """A byte-level BPE tokenizer trained on ``texts`` with the ``tokenizers`` library (offline)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=1, special_tokens=[EOS, PAD],
                            show_progress=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=EOS, bos_token=EOS,
                                  unk_token=EOS, pad_token=PAD)
    tok.padding_side = "right"
    return tok


def build_tiny(texts: Iterable[str], out_dir: str | os.PathLike[str], config: TinyConfig = TinyConfig()) -> Path:
    """Train the tokenizer on ``texts``, build a seeded tiny GPT-2 LM and save both to ``out_dir``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = train_tokenizer(texts, config.vocab_size)
    torch.manual_seed(config.seed)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=config.n_positions, n_embd=config.n_embd,
                     n_layer=config.n_layer, n_head=config.n_head, bos_token_id=tok.eos_token_id,
                     eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = GPT2LMHeadModel(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
