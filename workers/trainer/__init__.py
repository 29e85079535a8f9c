"""The RLCEF trainer: rollouts, sandbox rewards, GRPO on DeepSpeed, checkpoints, telemetry.

Plain Python: never imports Django or the control-plane apps.
"""
