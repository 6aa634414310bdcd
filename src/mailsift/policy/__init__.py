"""mailsift.policy"""
