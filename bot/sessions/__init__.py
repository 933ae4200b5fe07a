"""Sessions: free slots from weekly windows (scheduling), booking, moving, cancelling and closing
a session (booking), the reminders before and after it, its calendar invite (ics), and what a
completed session earns its mentor (earnings)."""
