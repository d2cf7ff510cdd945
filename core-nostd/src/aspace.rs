//! The address-space manager: the one authority on what is mapped where (client, core, free).
