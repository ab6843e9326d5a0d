"""Patient matching and the master patient index (MPI).

Pure parts (no I/O): `nhs` (NHS number normalise/display/verification), `features` (Patient → comparable record),
`blocking` (candidate keys), `compare` (comparison levels), `weights` (Fellegi-Sunter scoring), `rules` (never-link
and auto-link), `cluster` (constrained clustering for batch re-link), `em` (weight estimation), `duplicates`
(cross-organisation fact fingerprints). `service` runs them against the store inside write transactions.
"""
