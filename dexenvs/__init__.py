"""Dexterous manipulation environments on ManiSkill3."""
