"""Training: the one loop, model specs and their inputs, fold and final models, the selection
protocol, tuning, the other protocols, and the levers that train (pre-training, adaptation, distillation)."""
