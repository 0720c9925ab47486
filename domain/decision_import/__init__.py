"""Legacy decision logs imported into the decision log: the fields of a legacy decision, how a
source's columns are renamed to them, and how one row is checked, keyed and digested."""
