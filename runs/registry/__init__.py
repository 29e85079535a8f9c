"""The model registry: Hugging Face models that runs start from, inspected by a node of their pool
(docs/models.md)."""
