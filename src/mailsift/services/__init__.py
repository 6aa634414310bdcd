"""mailsift.services"""
