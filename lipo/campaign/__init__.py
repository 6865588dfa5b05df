"""A campaign: studies x splits x seeds, their controls, the references and the report, in one command."""
