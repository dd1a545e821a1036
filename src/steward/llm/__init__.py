"""LLM systems: prompts versioned like code, eval sets that gate changes, providers to run them."""
