"""mailsift.auth"""
