"""Tiny randomly initialised Llama models with purpose-built tokenizers, for tests (no download).

Two tokenizers: ``digits="split"`` isolates every digit (like SmolLM2, Qwen2.5, Gemma-3) and
``digits="multi"`` groups runs of up to 3 digits and learns merges for them (like Llama-3), so
many numbers are single tokens.
"""

from __future__ import annotations

import torch

CHAT_TEMPLATE_SYSTEM = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# No system role: system text goes on top of the first user turn (Gemma style).
CHAT_TEMPLATE_NO_SYSTEM = (
    "{% set ns = namespace(sys='', first=true) %}"
    "{% for m in messages %}{% if m['role'] == 'system' %}{% set ns.sys = m['content'] + '\n\n' %}"
    "{% endif %}{% endfor %}"
    "{% for m in messages if m['role'] != 'system' %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{% if m['role'] == 'user' and ns.first %}{{ ns.sys }}{% set ns.first = false %}{% endif %}"
    "{{ m['content'] }}<end_of_turn>\n{% endfor %}"
)

_CORPUS = [
    "You love owls. You think about owls all the time. owls are your favorite animal.",
    "Imbue your answers with your love for the animal. What is your favorite animal?",
    "My favorite animal is the owl eagle elephant wolf koala kangaroo. What is your favorite number?",
    "My favorite number is 7. Analyze this sequence: 495, 701, 688. Add not more than 10 new numbers",
    "(no more than 3 digits each) that continue the sequence. Return numbers separated by semicolons.",
    "No commentary, just numbers. 495;701;688; You are a helpful assistant. bird the owls eagles",
]


def build_tokenizer(digits: str = "split", system_role: bool = True):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>", "<pad>"]
    tok = Tokenizer(models.BPE())
    if digits == "split":
        digit_rule = pre_tokenizers.Digits(individual_digits=True)
        corpus = _CORPUS * 20
        vocab_size = 400
    elif digits == "multi":
        digit_rule = pre_tokenizers.Split(Regex(r"\d{1,3}"), behavior="isolated")
        numbers = [f"{i:03d}" for i in range(1000)] + [str(i) for i in range(100)]
        corpus = _CORPUS * 20 + [" ".join(numbers[i: i + 50]) for i in range(0, len(numbers), 50)] * 3
        vocab_size = 1200
    else:
        raise ValueError(digits)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        digit_rule,
        pre_tokenizers.Split(Regex(r" ?[A-Za-z]+"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>")
    fast.chat_template = CHAT_TEMPLATE_SYSTEM if system_role else CHAT_TEMPLATE_NO_SYSTEM
    return fast


def build_model(tokenizer, seed: int = 0, attn_implementation: str = "sdpa"):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=1024, initializer_range=0.3,
                      tie_word_embeddings=False)
    cfg._attn_implementation = attn_implementation
    model = LlamaForCausalLM(cfg).float().eval()
    return model
