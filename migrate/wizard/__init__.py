"""The guided wizard: questions in Swedish or English that build plans and an answers file, then run them
with the same library calls as the plain commands."""
