"""The intermediate representation: typed op nodes in small DAGs, grouped as a network."""
