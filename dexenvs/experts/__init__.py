"""Scripted experts (the stand-in for teleoperated seed demonstrations)."""
