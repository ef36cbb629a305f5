"""Filter recipes: the expression grammar, the recipe model, applying a recipe to a dataset."""
