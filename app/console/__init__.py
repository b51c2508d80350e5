"""The admin and officer web console (server-rendered pages under /console)."""
