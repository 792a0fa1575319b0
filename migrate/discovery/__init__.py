"""Finding where a mailbox lives: provider playbooks, Thunderbird-style autoconfig, MX records, probing,
and the mail stores a desktop client keeps on this computer. Every network step takes a `Network`, so
tests point it at loopback servers."""
