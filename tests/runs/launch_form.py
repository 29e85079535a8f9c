"""What the tests post to the launch form: the fields a page from before the engine settings showed
(none of precision, zero_stage, beta, clip_eps, gradient_checkpointing, lora_rank: a left-out basic
setting takes its default), plus the dataset version, model, pool or team a test adds."""

LAUNCH_FORM = {
    "steps": 3,
    "group_size": 4,
    "prompts_per_step": 2,
    "lr": 0.001,
    "seed": 1,
    "max_new_tokens": 32,
    "sft_warmup_steps": 0,
    "sft_lr": 0.003,
    "eval_every": 0,
    "eval_problems": 0,
}
