"""mailsift.delivery"""
