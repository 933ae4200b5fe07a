"""Learning: the catalogue's courses as readers see them (courses), the lessons delivered in chat on
demand or on a drip (lessons), and importing lessons from files (importer)."""
