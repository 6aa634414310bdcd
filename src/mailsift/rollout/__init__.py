"""mailsift.rollout"""
