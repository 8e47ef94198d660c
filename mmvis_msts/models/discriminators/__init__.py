from .fgbg_discriminator import FgBgDiscriminator

__all__ = ['FgBgDiscriminator']
