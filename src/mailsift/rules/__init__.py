"""mailsift.rules"""
