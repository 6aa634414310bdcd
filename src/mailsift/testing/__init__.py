"""mailsift.testing"""
