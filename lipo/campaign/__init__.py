"""A campaign: studies x splits x seeds with their controls, references and report, in one go."""
