"""mailsift.store"""
